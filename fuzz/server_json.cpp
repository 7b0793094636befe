// libFuzzer entry: untrusted HTTP request bodies through every request parser of `flashrt serve`
// (tests/server/server_fuzz_test.cpp runs the same entry point on mutated bodies in every test
// run).
#include <cstddef>
#include <cstdint>

#include "server/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flashrt::server::fuzz_request_parsers(data, size);
  return 0;
}
