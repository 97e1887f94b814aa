#include <gtest/gtest.h>

#include "rpc/rpc.h"

namespace sluice::rpc {
namespace {

Registry echo_registry() {
  Registry r;
  EXPECT_TRUE(r.add("echo", [](const Params& p) {
                 const std::string s = p.str("s");
                 const uint64_t n = p.u64("n", 7);
                 const bool f = p.flag("f", false);
                 p.done();
                 return Json{{"s", s}, {"n", n}, {"f", f}};
               }).ok());
  EXPECT_TRUE(r.add("fail", [](const Params&) -> Json { throw Error{-19, "no such thing"}; }).ok());
  EXPECT_TRUE(r.add("throws", [](const Params&) -> Json { throw std::runtime_error("boom"); }).ok());
  return r;
}

int error_code(const Json& response) { return response.at("error").at("code").get<int>(); }

TEST(Dispatch, AnswersWithResultAndEchoesId) {
  Registry r = echo_registry();
  Json out = r.dispatch_text(R"({"jsonrpc":"2.0","id":"abc","method":"echo","params":{"s":"hi","f":true}})");
  EXPECT_EQ(out["id"], "abc");
  EXPECT_EQ(out["result"], (Json{{"s", "hi"}, {"n", 7}, {"f", true}}));
  EXPECT_FALSE(out.contains("error"));
}

TEST(Dispatch, StandardErrorCodes) {
  Registry r = echo_registry();
  EXPECT_EQ(error_code(r.dispatch_text("{nope")), kParseError);
  EXPECT_EQ(error_code(r.dispatch_text("[1,2]")), kInvalidRequest);
  EXPECT_EQ(error_code(r.dispatch_text(R"({"id":1,"method":"echo"})")), kInvalidRequest);  // no "jsonrpc"
  EXPECT_EQ(error_code(r.dispatch_text(R"({"jsonrpc":"2.0","id":1,"method":3})")), kInvalidRequest);
  EXPECT_EQ(error_code(r.dispatch_text(R"({"jsonrpc":"2.0","id":{},"method":"echo"})")), kInvalidRequest);
  Json missing = r.dispatch_text(R"({"jsonrpc":"2.0","id":2,"method":"nope"})");
  EXPECT_EQ(error_code(missing), kMethodNotFound);
  EXPECT_EQ(missing["id"], 2);
}

TEST(Dispatch, BadParamsNameTheMember) {
  Registry r = echo_registry();
  auto call = [&](const std::string& params) {
    return r.dispatch_text(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":)" + params + "}");
  };
  Json missing = call("{}");
  EXPECT_EQ(error_code(missing), kInvalidParams);
  EXPECT_NE(missing["error"]["message"].get<std::string>().find("'s'"), std::string::npos);
  Json typo = call(R"({"s":"x","nn":1})");
  EXPECT_EQ(error_code(typo), kInvalidParams);
  EXPECT_NE(typo["error"]["message"].get<std::string>().find("'nn'"), std::string::npos);
  EXPECT_EQ(error_code(call(R"({"s":"x","n":-1})")), kInvalidParams);
  EXPECT_EQ(error_code(call(R"({"s":"x","n":1.5})")), kInvalidParams);
  EXPECT_EQ(error_code(call(R"({"s":5})")), kInvalidParams);
  EXPECT_EQ(error_code(call("[1]")), kInvalidParams);
}

TEST(Dispatch, HandlerErrorsBecomeResponses) {
  Registry r = echo_registry();
  Json fail = r.dispatch_text(R"({"jsonrpc":"2.0","id":1,"method":"fail"})");
  EXPECT_EQ(error_code(fail), -19);
  EXPECT_EQ(fail["error"]["message"], "no such thing");
  Json thrown = r.dispatch_text(R"({"jsonrpc":"2.0","id":1,"method":"throws"})");
  EXPECT_EQ(error_code(thrown), kInternalError);
  EXPECT_EQ(thrown["error"]["message"], "boom");
}

TEST(Dispatch, NotificationGetsNoResponse) {
  Registry r = echo_registry();
  EXPECT_TRUE(r.dispatch_text(R"({"jsonrpc":"2.0","method":"echo","params":{"s":"x"}})").is_null());
}

TEST(Registry, RefusesADuplicateMethod) {
  Registry r = echo_registry();
  EXPECT_EQ(r.add("echo", [](const Params&) { return Json(); }).code(), Errc::exists);
}

TEST(Config, LoadCallsMethodsInOrderAndSaveWritesThem) {
  Registry r;
  std::vector<std::string> made;
  ASSERT_TRUE(r.add("make", [&](const Params& p) {
                 made.push_back(p.str("name"));
                 p.done();
                 return Json(true);
               }).ok());
  r.add_subsystem("things", [&] {
    Json out = Json::array();
    for (const auto& n : made) out.push_back({{"method", "make"}, {"params", {{"name", n}}}});
    return out;
  });
  const Json config = Json::parse(R"({"subsystems":[{"subsystem":"things","config":[
      {"method":"make","params":{"name":"a"}},{"method":"make","params":{"name":"b"}}]},
      {"subsystem":"empty","config":null}]})");
  ASSERT_TRUE(r.load_config(config).ok());
  EXPECT_EQ(made, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.save_config()["subsystems"][0]["config"], config["subsystems"][0]["config"]);
}

TEST(Config, AFailingEntryIsNamed) {
  Registry r = echo_registry();
  Status bad = r.load_config(Json::parse(R"({"subsystems":[{"subsystem":"bdev","config":[
      {"method":"echo","params":{"s":"ok"}},{"method":"nope"}]}]})"));
  EXPECT_EQ(bad.code(), Errc::invalid_argument);
  EXPECT_NE(bad.message().find("entry 2 (nope)"), std::string::npos) << bad.message();
  Status params = r.load_config(Json::parse(R"({"subsystems":[{"subsystem":"bdev","config":[{"method":"echo"}]}]})"));
  EXPECT_NE(params.message().find("missing 's'"), std::string::npos) << params.message();
  EXPECT_FALSE(r.load_config(Json::parse("[]")).ok());
  EXPECT_FALSE(r.load_config(Json::parse(R"({"subsystems":[{"config":[]}]})")).ok());
}

}  // namespace
}  // namespace sluice::rpc
