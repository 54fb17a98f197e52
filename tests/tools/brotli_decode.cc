// brotli_decode: decodes a brotli stream from stdin to stdout with libbrotlidec (Debian's libbrotli-dev). For the
// integration tests (test_compress.py), which check that br objects decompress to the site's files when the
// machine's Python has no brotli module. Exit 0: decoded whole; 1: not a valid, complete brotli stream.
#include <brotli/decode.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

int main() {
  std::vector<std::uint8_t> in;
  std::vector<std::uint8_t> chunk(1 << 16);
  for (std::size_t n; (n = std::fread(chunk.data(), 1, chunk.size(), stdin)) > 0;) {
    in.insert(in.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
  const std::unique_ptr<BrotliDecoderState, decltype(&BrotliDecoderDestroyInstance)> state(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), &BrotliDecoderDestroyInstance);
  if (!state) return 1;
  std::size_t avail_in = in.size();
  const std::uint8_t* next_in = in.data();
  BrotliDecoderResult rc = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
  while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
    std::size_t avail_out = chunk.size();
    std::uint8_t* next_out = chunk.data();
    rc = BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
    const std::size_t produced = chunk.size() - avail_out;
    if (std::fwrite(chunk.data(), 1, produced, stdout) != produced) return 1;
  }
  if (rc != BROTLI_DECODER_RESULT_SUCCESS || avail_in != 0) {
    std::fprintf(stderr, "brotli_decode: %s\n",
                 rc == BROTLI_DECODER_RESULT_ERROR ? BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state.get()))
                                                   : "truncated or trailing input");
    return 1;
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}
