// Corpus-replay driver for libFuzzer targets, linked in place of libFuzzer's
// main by bazel/fuzz.bzl. It feeds every file named on the command line to
// LLVMFuzzerTestOneInput, then a fixed set of seeded pseudo-random inputs, so
// that each `bazel test` run re-checks every past finding and a little more.
// A replay that finds no corpus file fails: a check that runs nothing proves
// nothing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv)
    __attribute__((weak));

namespace {

constexpr int kRandomInputCount = 256;
constexpr size_t kRandomInputBytesMax = 512;

bool IsCorpusFile(const std::string& path) {
  // The corpus folder's own BUILD file is not an input.
  return path.size() < 11 || path.compare(path.size() - 11, 11, "BUILD.bazel") != 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  int replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    if (!IsCorpusFile(path)) continue;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "fuzz replay: cannot read corpus file %s\n", argv[i]);
      return 1;
    }
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++replayed;
  }
  if (replayed == 0) {
    std::fprintf(stderr, "fuzz replay: no corpus files given\n");
    return 1;
  }
  // splitmix64 with a fixed seed: the same inputs on every run and platform.
  uint64_t state = 0x5eed;
  std::vector<uint8_t> buffer;
  for (int n = 0; n < kRandomInputCount; ++n) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    buffer.resize(static_cast<size_t>(z % (kRandomInputBytesMax + 1)));
    for (uint8_t& byte : buffer) {
      state += 0x9e3779b97f4a7c15ULL;
      byte = static_cast<uint8_t>((state * 0xbf58476d1ce4e5b9ULL) >> 56);
    }
    LLVMFuzzerTestOneInput(buffer.data(), buffer.size());
  }
  std::printf("fuzz replay: %d corpus files and %d random inputs, no finding\n",
              replayed, kRandomInputCount);
  return 0;
}
