// MD5 of many messages at once (Md5Many): with AVX-512, sixteen messages go through the 64 MD5 steps together, one
// in each 32-bit lane of a 512-bit register.
//
// Why not a library: MD5 is one long chain of dependent additions, so one message cannot go faster than about 5
// cycles a byte whatever the instructions (OpenSSL's assembly does 0.7 GB/s here). Only several messages side by
// side can; Intel's isa-l_crypto does that (its "multi-buffer" MD5), but it is not packaged for Debian, and
// OpenSSL, libgcrypt, nettle and libmd hash one message at a time. The lanes here are checked against OpenSSL's
// MD5 (md5_many_test.cc), on every message length around the padding's edges and on readers that hand out
// uneven pieces.
// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_epi32(), which its own -Wmaybe-uninitialized
// then reports as uninitialized; only this file includes them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

constexpr std::size_t kLanes = 16;
constexpr std::size_t kBlock = 64;
// With this many messages left or fewer, each is finished on its own (Blocks1).
constexpr std::size_t kAloneAtMost = 2;

// RFC 1321: the sine-derived constants, the shift of each step, and the message word each step adds.
constexpr std::array<std::uint32_t, 64> kK = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
constexpr std::array<int, 16> kShift = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};
constexpr int Word(int step) {
  switch (step / 16) {
    case 0: return step;
    case 1: return (5 * step + 1) % 16;
    case 2: return (3 * step + 5) % 16;
    default: return (7 * step) % 16;
  }
}
constexpr std::array<std::uint32_t, 4> kInit = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

// The four round functions as vpternlogd truth tables (bit (x<<2 | y<<1 | z) of the table is f(x, y, z)).
constexpr int Table(bool (*f)(bool, bool, bool)) {
  int t = 0;
  for (int i = 0; i < 8; ++i) t |= f((i & 4) != 0, (i & 2) != 0, (i & 1) != 0) << i;
  return t;
}
constexpr int kF = Table([](bool b, bool c, bool d) { return (b && c) || (!b && d); });
constexpr int kG = Table([](bool b, bool c, bool d) { return (b && d) || (c && !d); });
constexpr int kH = Table([](bool b, bool c, bool d) { return (b != c) != d; });
constexpr int kI = Table([](bool b, bool c, bool d) { return c != (b || !d); });

// One step of all sixteen lanes; `v` holds a, b, c, d, and which of them plays `a` turns with the step.
template <int kStep>
__attribute__((target("avx512f"), always_inline)) inline void Step(__m512i (&v)[4], const __m512i (&m)[16]) {
  constexpr int kTable = kStep < 16 ? kF : kStep < 32 ? kG : kStep < 48 ? kH : kI;
  __m512i& a = v[(64 - kStep) % 4];
  const __m512i b = v[(65 - kStep) % 4];
  const __m512i c = v[(66 - kStep) % 4];
  const __m512i d = v[(67 - kStep) % 4];
  const __m512i f = _mm512_ternarylogic_epi32(b, c, d, kTable);
  __m512i t = _mm512_add_epi32(_mm512_add_epi32(a, f),
                               _mm512_add_epi32(m[Word(kStep)], _mm512_set1_epi32(static_cast<int>(kK[kStep]))));
  constexpr int kRotate = kShift[(kStep / 16) * 4 + kStep % 4];  // an immediate, also unoptimised (-O0)
  t = _mm512_rol_epi32(t, kRotate);
  a = _mm512_add_epi32(b, t);
}

template <std::size_t... kSteps>
__attribute__((target("avx512f"), always_inline)) inline void Steps(__m512i (&v)[4], const __m512i (&m)[16],
                                                                    std::index_sequence<kSteps...>) {
  (Step<static_cast<int>(kSteps)>(v, m), ...);
}

// Sixteen 64-byte rows (one block per lane) into sixteen registers of one message word each (word w of every
// lane in register w): a 16x16 transpose of 32-bit words.
__attribute__((target("avx512f"), always_inline)) inline void Transpose(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  __m512i u[16];  // u[4g + j], 128-bit lane k: word 4k + j of rows 4g .. 4g + 3
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);   // lanes 0, 2 of each
    const __m512i v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);   // lanes 1, 3 of each
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
    r[12 + j] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
  }
}

// `blocks` blocks of each lane, lane l reading from data[l] onward; state[i][l] is word i of lane l's state.
__attribute__((target("avx512f"))) void Blocks16(std::uint32_t (&state)[4][kLanes],
                                                 const unsigned char* const (&data)[kLanes], std::size_t blocks) {
  __m512i s[4];
  for (int i = 0; i < 4; ++i) s[i] = _mm512_loadu_si512(state[i]);
  for (std::size_t n = 0; n < blocks; ++n) {
    __m512i m[16];
    for (std::size_t l = 0; l < kLanes; ++l) m[l] = _mm512_loadu_si512(data[l] + n * kBlock);
    Transpose(m);
    __m512i v[4] = {s[0], s[1], s[2], s[3]};
    Steps(v, m, std::make_index_sequence<64>());
    for (int i = 0; i < 4; ++i) s[i] = _mm512_add_epi32(s[i], v[i]);
  }
  for (int i = 0; i < 4; ++i) _mm512_storeu_si512(state[i], s[i]);
}

// The same steps for one message in general-purpose registers: for the last messages of a batch, once too few are
// left for the lanes to beat hashing them one at a time.
template <int kStep>
__attribute__((always_inline)) inline void Step1(std::uint32_t (&v)[4], const std::uint32_t (&m)[16]) {
  std::uint32_t& a = v[(64 - kStep) % 4];
  const std::uint32_t b = v[(65 - kStep) % 4];
  const std::uint32_t c = v[(66 - kStep) % 4];
  const std::uint32_t d = v[(67 - kStep) % 4];
  std::uint32_t f;
  if constexpr (kStep < 16) {
    f = d ^ (b & (c ^ d));
  } else if constexpr (kStep < 32) {
    f = c ^ (d & (b ^ c));
  } else if constexpr (kStep < 48) {
    f = b ^ c ^ d;
  } else {
    f = c ^ (b | ~d);
  }
  a = b + std::rotl(a + f + m[Word(kStep)] + kK[kStep], kShift[(kStep / 16) * 4 + kStep % 4]);
}

template <std::size_t... kSteps>
__attribute__((always_inline)) inline void Steps1(std::uint32_t (&v)[4], const std::uint32_t (&m)[16],
                                                  std::index_sequence<kSteps...>) {
  (Step1<static_cast<int>(kSteps)>(v, m), ...);
}

void Blocks1(std::uint32_t (&s)[4], const unsigned char* data, std::size_t blocks) {
  for (std::size_t n = 0; n < blocks; ++n) {
    std::uint32_t m[16];
    std::memcpy(m, data + n * kBlock, kBlock);  // little-endian words, as MD5 reads them
    std::uint32_t v[4] = {s[0], s[1], s[2], s[3]};
    Steps1(v, m, std::make_index_sequence<64>());
    for (int i = 0; i < 4; ++i) s[i] += v[i];
  }
}

bool HaveAvx512() {
  static const bool have = __builtin_cpu_supports("avx512f");
  return have;
}

// One lane's message: the reader's pieces, cut into runs of whole blocks, the bytes of a block split between two
// pieces gathered in `carry`, and the padding (0x80, zeros, the length in bits) in `tail`.
struct Lane {
  std::size_t job = 0;
  bool active = false;
  const unsigned char* run = nullptr;  ///< the blocks the kernel reads next
  std::size_t run_blocks = 0;
  std::span<const unsigned char> rest;  ///< what is left of the reader's last piece
  bool at_end = false;                  ///< the reader has nothing more
  bool padded = false;                  ///< `run` is the padding: the message is hashed once it is consumed
  std::uint64_t length = 0;
  std::size_t carry_length = 0;
  alignas(64) std::array<unsigned char, kBlock> carry{};
  alignas(64) std::array<unsigned char, 2 * kBlock> tail{};
};

// Sets the lane's next run of blocks. False: the message is done (or its reader failed: `failed`).
bool NextRun(Lane& lane, const Md5Reader& reader, std::optional<Error>& failed) {
  if (lane.padded) return false;
  for (;;) {
    if (lane.carry_length == 0 && lane.rest.size() >= kBlock) {
      lane.run = lane.rest.data();
      lane.run_blocks = lane.rest.size() / kBlock;
      lane.rest = lane.rest.subspan(lane.run_blocks * kBlock);
      lane.length += lane.run_blocks * kBlock;
      return true;
    }
    const std::size_t take = std::min(kBlock - lane.carry_length, lane.rest.size());
    if (take > 0) std::memcpy(lane.carry.data() + lane.carry_length, lane.rest.data(), take);  // rest may be null
    lane.carry_length += take;
    lane.rest = lane.rest.subspan(take);
    lane.length += take;
    if (lane.carry_length == kBlock) {
      lane.run = lane.carry.data();
      lane.run_blocks = 1;
      lane.carry_length = 0;
      return true;
    }
    if (!lane.at_end) {
      auto piece = reader();
      if (!piece) {
        failed = std::move(piece.error());
        return false;
      }
      lane.at_end = piece->empty();
      lane.rest = *piece;
      continue;
    }
    // The padding: the last partial block, 0x80, zeros up to 8 bytes before a block's end, the length in bits.
    lane.tail.fill(0);
    std::memcpy(lane.tail.data(), lane.carry.data(), lane.carry_length);
    lane.tail[lane.carry_length] = 0x80;
    const std::size_t blocks = lane.carry_length + 1 + 8 <= kBlock ? 1 : 2;
    const std::uint64_t bits = lane.length * 8;
    for (int i = 0; i < 8; ++i) lane.tail[blocks * kBlock - 8 + i] = static_cast<unsigned char>(bits >> (8 * i));
    lane.run = lane.tail.data();
    lane.run_blocks = blocks;
    lane.padded = true;
    return true;
  }
}

std::vector<Result<Md5Digest>> LanesMd5(std::span<const Md5Reader> readers) {
  std::vector<Result<Md5Digest>> out(readers.size(), Md5Digest{});
  std::array<Lane, kLanes> lanes;
  alignas(64) std::uint32_t state[4][kLanes] = {};
  std::size_t next = 0;
  // Gives the lane the next message (skipping those whose reader fails at once); false when none is left.
  const auto assign = [&](std::size_t l) {
    Lane& lane = lanes[l];
    while (next < readers.size()) {
      lane = Lane{};
      lane.job = next++;
      for (int i = 0; i < 4; ++i) state[i][l] = kInit[i];
      std::optional<Error> failed;
      if (NextRun(lane, readers[lane.job], failed)) {
        lane.active = true;
        return;
      }
      out[lane.job] = std::unexpected(std::move(*failed));
    }
    lane.active = false;
  };
  const auto finish = [&](std::size_t l) {
    Lane& lane = lanes[l];
    Md5Digest& d = *out[lane.job];
    for (int i = 0; i < 4; ++i) {
      for (int b = 0; b < 4; ++b) d[4 * i + b] = static_cast<unsigned char>(state[i][l] >> (8 * b));
    }
  };
  for (std::size_t l = 0; l < kLanes; ++l) assign(l);
  for (;;) {
    std::size_t blocks = 0;
    std::size_t active = 0;
    const unsigned char* shortest = nullptr;
    for (const Lane& lane : lanes) {
      if (!lane.active) continue;
      ++active;
      if (shortest == nullptr || lane.run_blocks < blocks) {
        blocks = lane.run_blocks;
        shortest = lane.run;
      }
    }
    if (shortest == nullptr) break;
    // The lanes go 16 blocks at a time for the price of about 2.5 blocks of one message alone: with 2 messages
    // left (a long file at the end of a batch of small ones) each is finished on its own.
    if (active <= kAloneAtMost) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        Lane& lane = lanes[l];
        if (!lane.active) continue;
        std::uint32_t s[4] = {state[0][l], state[1][l], state[2][l], state[3][l]};
        std::optional<Error> failed;
        do {
          Blocks1(s, lane.run, lane.run_blocks);
        } while (NextRun(lane, readers[lane.job], failed));
        lane.active = false;
        if (failed) {
          out[lane.job] = std::unexpected(std::move(*failed));
          continue;
        }
        for (int i = 0; i < 4; ++i) state[i][l] = s[i];
        finish(l);
      }
      break;
    }
    // Every lane runs `blocks` blocks: the lanes whose run is that short move on, the others stay in theirs. An
    // idle lane hashes the shortest run again (readable memory of that many blocks); its state is not used.
    const unsigned char* data[kLanes];
    for (std::size_t l = 0; l < kLanes; ++l) data[l] = lanes[l].active ? lanes[l].run : shortest;
    Blocks16(state, data, blocks);
    for (std::size_t l = 0; l < kLanes; ++l) {
      Lane& lane = lanes[l];
      if (!lane.active) continue;
      lane.run += blocks * kBlock;
      lane.run_blocks -= blocks;
      if (lane.run_blocks > 0) continue;
      std::optional<Error> failed;
      if (NextRun(lane, readers[lane.job], failed)) continue;
      if (failed) {
        out[lane.job] = std::unexpected(std::move(*failed));
      } else {
        finish(l);
      }
      assign(l);
    }
  }
  return out;
}

// Without AVX-512: one message after another through OpenSSL's MD5.
std::vector<Result<Md5Digest>> OneByOneMd5(std::span<const Md5Reader> readers) {
  std::vector<Result<Md5Digest>> out;
  out.reserve(readers.size());
  for (const Md5Reader& reader : readers) {
    Md5 md5;
    std::optional<Error> failed;
    for (;;) {
      auto piece = reader();
      if (!piece) {
        failed = std::move(piece.error());
        break;
      }
      if (piece->empty()) break;
      md5.Update(piece->data(), piece->size());
    }
    if (failed) {
      out.emplace_back(std::unexpected(std::move(*failed)));
    } else {
      out.emplace_back(md5.Final());
    }
  }
  return out;
}

}  // namespace

bool Md5ManyUsesLanes() { return HaveAvx512(); }

std::vector<Result<Md5Digest>> Md5Many(std::span<const Md5Reader> readers, bool lanes) {
  if (lanes && HaveAvx512()) return LanesMd5(readers);
  return OneByOneMd5(readers);
}

std::vector<Md5Digest> Md5Many(std::span<const std::string_view> messages) {
  std::vector<Md5Reader> readers;
  readers.reserve(messages.size());
  for (std::string_view m : messages) {
    readers.emplace_back([m, given = false]() mutable -> Result<std::span<const unsigned char>> {
      if (given) return std::span<const unsigned char>();
      given = true;
      return std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(m.data()), m.size());
    });
  }
  std::vector<Md5Digest> out;
  out.reserve(messages.size());
  for (auto& d : Md5Many(readers)) out.push_back(*d);  // in-memory readers cannot fail
  return out;
}

}  // namespace sitesync::aws
