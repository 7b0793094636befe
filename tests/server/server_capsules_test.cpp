// The capsules API: export and import files, capsules in --capsule-dir survive a server restart,
// capsules saved by `flashrt capsule save` load, and capsules of another model are refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/model_fixtures.h"
#include "serve_process.h"
#include "server_fixture.h"

namespace flashrt::testing {
namespace {

const json kGreedy = {{"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Reply put_bytes(httplib::Client& c, const std::string& bytes) {
  Reply r;
  auto res = c.Put("/v1/capsules", bytes, "application/octet-stream");
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

TEST(ServerCapsules, ExportImportListDelete) {
  TestServer srv;
  auto c = srv.client();
  const std::string id = post_json(*c, "/v1/sessions", {{"text", "def main():\n"}}).body["id"];
  auto snap = post_json(*c, "/v1/sessions/" + id + "/snapshot", json::object());
  ASSERT_EQ(snap.status, 200) << snap.raw;
  const std::string cap = snap.body["id"];
  EXPECT_FALSE(snap.body["persisted"].get<bool>());  // no --capsule-dir
  const auto ref = post_json(*c, "/v1/sessions/" + id + "/generate", kGreedy).body["token_ids"];

  auto file = c->Get("/v1/capsules/" + cap);
  ASSERT_TRUE(file);
  ASSERT_EQ(file->status, 200);
  EXPECT_EQ(file->body.substr(0, 8), "FLASHCAP");
  auto imp = put_bytes(*c, file->body);
  ASSERT_EQ(imp.status, 201) << imp.raw;
  const std::string cap2 = imp.body["id"];
  EXPECT_NE(cap2, cap);
  EXPECT_TRUE(imp.body["compatible"].get<bool>());

  const std::string s2 = post_json(*c, "/v1/sessions", json::object()).body["id"];
  ASSERT_EQ(post_json(*c, "/v1/sessions/" + s2 + "/restore", {{"capsule", cap2}}).status, 200);
  EXPECT_EQ(post_json(*c, "/v1/sessions/" + s2 + "/generate", kGreedy).body["token_ids"], ref);

  const auto list = get(*c, "/v1/capsules");
  ASSERT_EQ(list.body["data"].size(), 2u) << list.raw;
  EXPECT_EQ(del(*c, "/v1/capsules/" + cap).status, 200);
  EXPECT_EQ(get(*c, "/v1/capsules").body["data"].size(), 1u);
  EXPECT_EQ(c->Get("/v1/capsules/" + cap)->status, 404);
  EXPECT_EQ(del(*c, "/v1/capsules/" + cap).status, 404);
}

TEST(ServerCapsules, SurviveARestartOfTheServerProcess) {
  const std::string dir = temp_dir() + "/server-capsules-restart";
  std::filesystem::remove_all(dir);
  std::string cap;
  json ref;
  {
    ServeProcess p({"-m", default_model_path(), "--ctx", "512", "--capsule-dir", dir});
    ASSERT_GT(p.port(), 0) << p.log();
    httplib::Client c("127.0.0.1", p.port());
    c.set_read_timeout(60);
    const std::string id = post_json(c, "/v1/sessions", {{"text", "import re\n"}}).body["id"];
    post_json(c, "/v1/sessions/" + id + "/generate", kGreedy);
    auto snap = post_json(c, "/v1/sessions/" + id + "/snapshot", json::object());
    ASSERT_EQ(snap.status, 200) << snap.raw;
    EXPECT_TRUE(snap.body["persisted"].get<bool>());
    cap = snap.body["id"];
    ref = post_json(c, "/v1/sessions/" + id + "/generate", kGreedy).body["token_ids"];
    EXPECT_EQ(p.stop(), 0) << p.log();
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/" + cap + ".cap"));
  ServeProcess p({"-m", default_model_path(), "--ctx", "512", "--capsule-dir", dir});
  ASSERT_GT(p.port(), 0) << p.log();
  httplib::Client c("127.0.0.1", p.port());
  c.set_read_timeout(60);
  const auto list = get(c, "/v1/capsules");
  ASSERT_EQ(list.body["data"].size(), 1u) << list.raw;
  EXPECT_EQ(list.body["data"][0]["id"], cap);
  const std::string id = post_json(c, "/v1/sessions", json::object()).body["id"];
  ASSERT_EQ(post_json(c, "/v1/sessions/" + id + "/restore", {{"capsule", cap}}).status, 200);
  EXPECT_EQ(post_json(c, "/v1/sessions/" + id + "/generate", kGreedy).body["token_ids"], ref);
  // Deleting removes the file.
  EXPECT_EQ(del(c, "/v1/capsules/" + cap).status, 200);
  EXPECT_FALSE(std::filesystem::exists(dir + "/" + cap + ".cap"));
  EXPECT_EQ(p.stop(), 0) << p.log();
}

TEST(ServerCapsules, CliCapsulesLoadAndForeignOrCorruptOnesAreRefused) {
  const std::string dir = temp_dir() + "/server-capsules-foreign";
  std::filesystem::create_directories(dir);
  // A capsule of this model saved by the CLI continues like `flashrt run --capsule`.
  const std::string mine = dir + "/mine.cap";
  ASSERT_EQ(run_flashrt("capsule save -m " + default_model_path() + " -p 'import os\n' -o " + mine)
                .status,
            0);
  // One of another model.
  const std::string other_model = dir + "/other.gguf", other = dir + "/other.cap";
  ASSERT_EQ(run_flashrt("make-model --arch qwen3 --shape tiny --type f32 -o " + other_model).status,
            0);
  ASSERT_EQ(run_flashrt("capsule save -m " + other_model + " --ids 1,2,3 -o " + other).status, 0);

  TestServer srv;
  auto c = srv.client();
  auto ok = put_bytes(*c, read_file(mine));
  ASSERT_EQ(ok.status, 201) << ok.raw;
  const std::string sid = post_json(*c, "/v1/sessions", json::object()).body["id"];
  ASSERT_EQ(post_json(*c, "/v1/sessions/" + sid + "/restore", {{"capsule", ok.body["id"]}}).status,
            200);
  auto gen = post_json(*c, "/v1/sessions/" + sid + "/generate",
                       {{"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}});
  const auto run = run_flashrt("run -m " + default_model_path() + " --capsule " + mine +
                               " -n 16 --temp 0 --ignore-eos --no-echo");
  EXPECT_EQ(gen.body["text"].get<std::string>() + "\n", run.out);

  auto foreign = put_bytes(*c, read_file(other));
  EXPECT_EQ(foreign.status, 400) << foreign.raw;
  EXPECT_EQ(foreign.body["error"]["code"], "capsule_model_mismatch") << foreign.raw;

  std::string corrupt = read_file(mine);
  corrupt[corrupt.size() / 2] ^= 0x5a;
  auto bad = put_bytes(*c, corrupt);
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(bad.body["error"]["code"], "invalid_capsule") << bad.raw;
  auto trunc = put_bytes(*c, read_file(mine).substr(0, 100));
  EXPECT_EQ(trunc.status, 400) << trunc.raw;
  EXPECT_EQ(put_bytes(*c, "").status, 400);

  auto unknown = post_json(*c, "/v1/sessions/" + sid + "/restore", {{"capsule", "cap_nope"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["error"]["code"], "capsule_not_found");
  EXPECT_EQ(c->Get("/v1/capsules/..%2F..%2Fetc%2Fpasswd")->status, 404);
  // The session is untouched by the refusals.
  EXPECT_EQ(get(*c, "/v1/sessions/" + sid).body["tokens"], gen.body["tokens"]);
}

}  // namespace
}  // namespace flashrt::testing
