// The sessions API driven by curl against the real `flashrt serve` process, as a user would:
// create, append, snapshot, generate, restore, generate again (identical), fork.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "models/model_fixtures.h"
#include "serve_process.h"

namespace flashrt::testing {
namespace {

class Curl {
 public:
  explicit Curl(int port) : base_("http://127.0.0.1:" + std::to_string(port)) {}
  nlohmann::json post(const std::string& path, const std::string& body) const {
    const std::string cmd = "curl -s -X POST " + base_ + path +
                            " -H 'Content-Type: application/json' -d '" + body + "'";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return nlohmann::json::parse(out);
  }

 private:
  std::string base_;
};

TEST(ServerCurl, SessionsSnapshotRestoreFork) {
  if (std::system("command -v curl >/dev/null 2>&1") != 0)
    FAIL() << "curl is missing: run `make deps`";
  ServeProcess server({"-m", source_dir() + "/models/pycoder-hybrid-12m.gguf", "--slots", "2"});
  ASSERT_GT(server.port(), 0) << server.log();
  const Curl curl(server.port());
  const auto session =
      curl.post("/v1/sessions", R"({"text": "import os\nimport sys\n\n\nclass "})");
  ASSERT_TRUE(session.contains("id")) << session.dump();
  const std::string id = session["id"];
  const auto cap = curl.post("/v1/sessions/" + id + "/snapshot", "{}");
  ASSERT_TRUE(cap.contains("id")) << cap.dump();
  const auto first =
      curl.post("/v1/sessions/" + id + "/generate", R"({"max_tokens": 20, "temperature": 0})");
  ASSERT_EQ(first["token_ids"].size(), 20u) << first.dump();
  const auto restored = curl.post("/v1/sessions/" + id + "/restore",
                                  R"({"capsule": ")" + cap["id"].get<std::string>() + R"("})");
  EXPECT_EQ(restored["tokens"], cap["pos"]) << restored.dump();
  const auto again =
      curl.post("/v1/sessions/" + id + "/generate", R"({"max_tokens": 20, "temperature": 0})");
  EXPECT_EQ(again["token_ids"], first["token_ids"]);
  EXPECT_EQ(again["text"], first["text"]);
  // A fork of the restored boundary continues like the original, independently.
  curl.post("/v1/sessions/" + id + "/restore",
            R"({"capsule": ")" + cap["id"].get<std::string>() + R"("})");
  const auto fork = curl.post("/v1/sessions/" + id + "/fork", "{}");
  ASSERT_TRUE(fork.contains("id")) << fork.dump();
  const auto from_fork = curl.post("/v1/sessions/" + fork["id"].get<std::string>() + "/generate",
                                   R"({"max_tokens": 20, "temperature": 0})");
  EXPECT_EQ(from_fork["token_ids"], first["token_ids"]);
  const auto bad = curl.post("/v1/sessions/sess_nope/generate", "{}");
  EXPECT_EQ(bad["error"]["code"], "session_not_found") << bad.dump();
  EXPECT_EQ(server.stop(), 0) << server.log();
}

}  // namespace
}  // namespace flashrt::testing
