// bench/md5_speed SITE_DIR: how fast aws::Md5Many hashes a site's files in the batches the uploader hashes them in
// (32 small bodies, or 16 large ones over 256 KiB, in path order), against OpenSSL's MD5 one file after another.
// The files are read into memory first: this measures the hashing only. Prints GB/s, the median of 5 rounds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "aws/aws.h"

namespace {

using sitesync::aws::Md5Many;
using sitesync::aws::Md5Reader;

Md5Reader InMemory(std::string_view m) {
  return [m, given = false]() mutable -> sitesync::Result<std::span<const unsigned char>> {
    if (given) return std::span<const unsigned char>();
    given = true;
    return std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(m.data()), m.size());
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: md5_speed SITE_DIR\n");
    return 2;
  }
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::recursive_directory_iterator(argv[1])) {
    if (e.is_regular_file()) paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> small, large;
  double total = 0;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    total += static_cast<double>(body.size());
    (body.size() > 256 * 1024 ? large : small).push_back(std::move(body));
  }
  std::printf("%zu files, %.1f MB (%zu over 256 KiB); Md5Many uses lanes: %s\n", paths.size(), total / 1e6,
              large.size(), sitesync::aws::Md5ManyUsesLanes() ? "yes (AVX-512)" : "no");
  for (const bool lanes : {true, false}) {
    std::vector<double> rounds;
    for (int round = 0; round < 5; ++round) {
      const auto start = std::chrono::steady_clock::now();
      for (const auto* bodies : {&small, &large}) {
        const std::size_t batch = bodies == &small ? 32 : 16;
        for (std::size_t b = 0; b < bodies->size(); b += batch) {
          std::vector<Md5Reader> readers;
          for (std::size_t i = b; i < std::min(bodies->size(), b + batch); ++i) {
            readers.push_back(InMemory((*bodies)[i]));
          }
          auto digests = Md5Many(readers, lanes);
          if (digests.size() != readers.size()) return 1;
        }
      }
      rounds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(rounds.begin(), rounds.end());
    std::printf("%-28s %.3f s  %.2f GB/s\n", lanes ? "Md5Many (lanes)" : "OpenSSL MD5, one at a time", rounds[2],
                total / rounds[2] / 1e9);
  }
  return 0;
}
