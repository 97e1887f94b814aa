// Login negotiation, target side: each key by its rule (list choice, AND, OR, minimum,
// maximum, declaration), Reject for out-of-range values, NotUnderstood, Irrelevant, the
// login declarations, the target's offers, stage transitions, and CHAP through a login.
#include "target/iscsi/negotiation.h"

#include <gtest/gtest.h>

#include <map>

namespace sluice::iscsi {
namespace {

using Keys = std::vector<KeyValue>;
using Answers = std::map<std::string, std::string>;

const KeyValue kInit{"InitiatorName", "iqn.2026-12.test:init"};
const KeyValue kTarget{"TargetName", "iqn.2026-12.test:disk"};

struct Reply {
  Negotiator::Step step;
  Answers answers;
  size_t count = 0;  // keys in the response (a key twice would show here)
};

Reply login(Negotiator& n, const Keys& keys, Stage csg, bool transit = false, Stage nsg = Stage::full_feature) {
  std::string text;
  Reply r;
  r.step = n.respond(keys, csg, transit, nsg, text);
  auto parsed = parse_text(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().to_string();
  if (parsed.ok()) {
    r.count = parsed->size();
    for (auto& kv : *parsed) r.answers[kv.key] = kv.value;
  }
  return r;
}

uint16_t code(const LoginStatus& s) { return uint16_t(s.status_class << 8 | s.status_detail); }

// A negotiator past the security stage, in the operational stage.
Negotiator operational(TargetOptions o = {}) {
  Negotiator n(std::move(o));
  const Reply r = login(n, {kInit, kTarget, {"SessionType", "Normal"}, {"AuthMethod", "None"}}, Stage::security, true,
                        Stage::operational);
  EXPECT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_TRUE(r.step.transit);
  return n;
}

TEST(IscsiNegotiation, SecurityStageNone) {
  TargetOptions o;
  o.target_alias = "disk one";
  o.target_portal_group_tag = 7;
  Negotiator n(o);
  const Reply r =
      login(n, {kInit, kTarget, {"SessionType", "Normal"}, {"InitiatorAlias", "host"}, {"AuthMethod", "SRP,None"}},
            Stage::security, true, Stage::operational);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_TRUE(r.step.transit);
  EXPECT_EQ(r.step.nsg, Stage::operational);
  EXPECT_EQ(r.answers.at("AuthMethod"), "None");
  EXPECT_EQ(r.answers.at("TargetPortalGroupTag"), "7");
  EXPECT_EQ(r.answers.at("TargetAlias"), "disk one");
  EXPECT_EQ(r.count, 3u);  // declarations are not answered
  EXPECT_EQ(n.params().initiator_name, kInit.value);
  EXPECT_EQ(n.params().initiator_alias, "host");
  EXPECT_EQ(n.params().target_name, kTarget.value);
}

TEST(IscsiNegotiation, EveryOperationalKeyByItsRule) {
  Negotiator n = operational();
  const Reply r = login(n,
                        {{"HeaderDigest", "CRC32C,None"},
                         {"DataDigest", "None"},
                         {"MaxConnections", "4"},
                         {"InitialR2T", "No"},
                         {"ImmediateData", "Yes"},
                         {"MaxRecvDataSegmentLength", "262144"},
                         {"MaxBurstLength", "16776192"},
                         {"FirstBurstLength", "524288"},
                         {"DefaultTime2Wait", "0"},
                         {"DefaultTime2Retain", "20"},
                         {"MaxOutstandingR2T", "8"},
                         {"DataPDUInOrder", "No"},
                         {"DataSequenceInOrder", "Yes"},
                         {"ErrorRecoveryLevel", "2"},
                         {"X-com.example.thing", "1"},
                         {"X#org.example", "1"},
                         {"UnknownKey", "1"},
                         {"IFMarker", "No"},
                         {"OFMarkInt", "2048~8192"}},
                        Stage::operational, true, Stage::full_feature);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_TRUE(r.step.transit);
  EXPECT_EQ(r.step.nsg, Stage::full_feature);
  EXPECT_TRUE(n.complete());
  const Answers& a = r.answers;
  EXPECT_EQ(a.at("HeaderDigest"), "CRC32C");  // first of the list the target takes
  EXPECT_EQ(a.at("DataDigest"), "None");
  EXPECT_EQ(a.at("MaxConnections"), "1");         // min
  EXPECT_EQ(a.at("InitialR2T"), "Yes");           // OR with the target's Yes
  EXPECT_EQ(a.at("ImmediateData"), "Yes");        // AND
  EXPECT_EQ(a.at("MaxBurstLength"), "1048576");   // min
  EXPECT_EQ(a.at("FirstBurstLength"), "262144");  // min
  EXPECT_EQ(a.at("DefaultTime2Wait"), "2");       // max
  EXPECT_EQ(a.at("DefaultTime2Retain"), "20");    // min
  EXPECT_EQ(a.at("MaxOutstandingR2T"), "1");      // min
  EXPECT_EQ(a.at("DataPDUInOrder"), "Yes");       // OR
  EXPECT_EQ(a.at("DataSequenceInOrder"), "Yes");
  EXPECT_EQ(a.at("ErrorRecoveryLevel"), "0");  // min: the target does 0
  EXPECT_EQ(a.at("X-com.example.thing"), "NotUnderstood");
  EXPECT_EQ(a.at("X#org.example"), "NotUnderstood");
  EXPECT_EQ(a.at("UnknownKey"), "NotUnderstood");
  EXPECT_EQ(a.at("IFMarker"), "No");
  EXPECT_EQ(a.at("OFMarkInt"), "Irrelevant");
  EXPECT_EQ(a.at("MaxRecvDataSegmentLength"), "262144");  // the target's own declaration
  const SessionParams& p = n.params();
  EXPECT_TRUE(p.header_digest);
  EXPECT_FALSE(p.data_digest);
  EXPECT_EQ(p.max_connections, 1u);
  EXPECT_TRUE(p.initial_r2t);
  EXPECT_TRUE(p.immediate_data);
  EXPECT_EQ(p.initiator_max_recv_data_segment_length, 262144u);
  EXPECT_EQ(p.target_max_recv_data_segment_length, 262144u);
  EXPECT_EQ(p.max_burst_length, 1048576u);
  EXPECT_EQ(p.first_burst_length, 262144u);
  EXPECT_EQ(p.default_time2wait, 2u);
  EXPECT_EQ(p.default_time2retain, 20u);
  EXPECT_EQ(p.max_outstanding_r2t, 1u);
  EXPECT_EQ(p.error_recovery_level, 0u);
}

TEST(IscsiNegotiation, TargetValuesWinWhereTheRuleSays) {
  TargetOptions o;
  o.initial_r2t = false;
  o.immediate_data = false;
  o.data_pdu_in_order = false;
  o.max_outstanding_r2t = 16;
  o.default_time2wait = 10;
  o.accept_crc32c = false;
  Negotiator n = operational(o);
  const Reply r = login(n,
                        {{"InitialR2T", "No"},
                         {"ImmediateData", "Yes"},
                         {"DataPDUInOrder", "No"},
                         {"MaxOutstandingR2T", "4"},
                         {"DefaultTime2Wait", "5"},
                         {"HeaderDigest", "CRC32C,None"},
                         {"DataDigest", "CRC32C"}},
                        Stage::operational);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_FALSE(r.step.transit);                    // T was clear
  EXPECT_EQ(r.answers.at("InitialR2T"), "No");     // OR of No and No
  EXPECT_EQ(r.answers.at("ImmediateData"), "No");  // AND with the target's No
  EXPECT_EQ(r.answers.at("DataPDUInOrder"), "No");
  EXPECT_EQ(r.answers.at("MaxOutstandingR2T"), "4");
  EXPECT_EQ(r.answers.at("DefaultTime2Wait"), "10");  // max
  EXPECT_EQ(r.answers.at("HeaderDigest"), "None");
  EXPECT_EQ(r.answers.at("DataDigest"), "Reject");  // no value in the list the target takes
  EXPECT_FALSE(n.params().initial_r2t);
  EXPECT_FALSE(n.params().immediate_data);
  EXPECT_FALSE(n.params().data_pdu_in_order);
}

TEST(IscsiNegotiation, OutOfRangeAndMalformedAreRejected) {
  Negotiator n = operational();
  const Reply r = login(n,
                        {{"MaxBurstLength", "511"},
                         {"FirstBurstLength", "16777216"},
                         {"MaxConnections", "0"},
                         {"ErrorRecoveryLevel", "3"},
                         {"DefaultTime2Wait", "3601"},
                         {"DefaultTime2Retain", "-1"},
                         {"MaxOutstandingR2T", "65536"},
                         {"InitialR2T", "yes"},
                         {"DataSequenceInOrder", ""}},
                        Stage::operational);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  for (const char* k :
       {"MaxBurstLength", "FirstBurstLength", "MaxConnections", "ErrorRecoveryLevel", "DefaultTime2Wait",
        "DefaultTime2Retain", "MaxOutstandingR2T", "InitialR2T", "DataSequenceInOrder"})
    EXPECT_EQ(r.answers.at(k), "Reject") << k;
  const SessionParams defaults;
  EXPECT_EQ(n.params().max_burst_length, defaults.max_burst_length);
  EXPECT_EQ(n.params().initiator_max_recv_data_segment_length, 8192u);
  // A declaration out of range fails the login.
  for (const char* v : {"511", "16777216", "lots"}) {
    Negotiator m = operational();
    EXPECT_EQ(code(login(m, {{"MaxRecvDataSegmentLength", v}}, Stage::operational).step.status), kLoginInitiatorError)
        << v;
  }
}

TEST(IscsiNegotiation, NumbersInHexAndBounds) {
  EXPECT_EQ(parse_number("0x200"), 512u);
  EXPECT_EQ(parse_number("0X1f"), 31u);
  EXPECT_EQ(parse_number("007"), 7u);
  EXPECT_EQ(parse_number("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_number("18446744073709551616"), std::nullopt);
  EXPECT_EQ(parse_number(""), std::nullopt);
  EXPECT_EQ(parse_number("0x"), std::nullopt);
  EXPECT_EQ(parse_number("1a"), std::nullopt);
  EXPECT_EQ(parse_number("+1"), std::nullopt);
  Negotiator n = operational();
  const Reply r = login(n, {{"MaxBurstLength", "0x200"}, {"MaxRecvDataSegmentLength", "16777215"}}, Stage::operational);
  EXPECT_EQ(r.answers.at("MaxBurstLength"), "512");
  EXPECT_EQ(n.params().initiator_max_recv_data_segment_length, 16777215u);
}

TEST(IscsiNegotiation, FirstBurstIrrelevantOrClamped) {
  {
    Negotiator n = operational();  // the target's ImmediateData is Yes: make it No by AND
    const Reply r =
        login(n, {{"FirstBurstLength", "4096"}, {"InitialR2T", "Yes"}, {"ImmediateData", "No"}}, Stage::operational);
    EXPECT_EQ(r.answers.at("FirstBurstLength"), "Irrelevant");  // decided after the keys after it
  }
  {
    Negotiator n = operational();
    const Reply r = login(n, {{"FirstBurstLength", "65536"}, {"MaxBurstLength", "4096"}}, Stage::operational, true);
    EXPECT_EQ(r.answers.at("MaxBurstLength"), "4096");
    EXPECT_EQ(r.answers.at("FirstBurstLength"), "4096");  // never above MaxBurstLength
    EXPECT_TRUE(r.step.transit);
    EXPECT_EQ(n.params().first_burst_length, 4096u);
  }
}

TEST(IscsiNegotiation, DiscoverySession) {
  Negotiator n({});
  Reply r = login(n, {kInit, {"SessionType", "Discovery"}, {"AuthMethod", "None"}}, Stage::security, true,
                  Stage::operational);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_EQ(r.answers.count("TargetPortalGroupTag"), 0u);
  r = login(n,
            {{"MaxBurstLength", "4096"},
             {"ImmediateData", "No"},
             {"MaxConnections", "1"},
             {"FirstBurstLength", "512"},
             {"DataPDUInOrder", "Yes"},
             {"HeaderDigest", "None"},
             {"MaxRecvDataSegmentLength", "8192"},
             {"SendTargets", "All"}},
            Stage::operational, true);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_EQ(n.params().session_type, SessionType::discovery);
  for (const char* k : {"MaxBurstLength", "ImmediateData", "MaxConnections", "FirstBurstLength", "DataPDUInOrder"})
    EXPECT_EQ(r.answers.at(k), "Irrelevant") << k;
  EXPECT_EQ(r.answers.at("HeaderDigest"), "None");
  EXPECT_EQ(r.answers.at("SendTargets"), "Reject");  // full feature phase only
  EXPECT_TRUE(r.step.transit);

  TargetOptions no;
  no.discovery_allowed = false;
  Negotiator m(no);
  r = login(m, {kInit, {"SessionType", "Discovery"}}, Stage::security);
  EXPECT_EQ(code(r.step.status), kLoginSessionTypeNotSupported);
}

TEST(IscsiNegotiation, FirstRequestDeclarations) {
  auto first = [](const Keys& keys, TargetOptions o = {}) {
    Negotiator n(std::move(o));
    return code(login(n, keys, Stage::security).step.status);
  };
  EXPECT_EQ(first({kTarget}), kLoginMissingParameter);
  EXPECT_EQ(first({kInit}), kLoginMissingParameter);  // Normal needs TargetName
  EXPECT_EQ(first({kInit, kTarget, {"SessionType", "Weird"}}), kLoginSessionTypeNotSupported);
  EXPECT_EQ(first({{"InitiatorName", "not-a-name"}, kTarget}), kLoginInitiatorError);
  EXPECT_EQ(first({kInit, {"TargetName", ""}}), kLoginNotFound);  // found by the login fuzzer
  EXPECT_EQ(first({kInit, {"TargetName", "iqn.has space"}}), kLoginNotFound);
  TargetOptions o;
  o.target_names = {"iqn.2026-12.test:other"};
  EXPECT_EQ(first({kInit, kTarget}, o), kLoginNotFound);
  o.target_names.push_back(kTarget.value);
  EXPECT_EQ(first({kInit, kTarget}, o), 0);
}

TEST(IscsiNegotiation, KeysTwiceOrOutOfPlace) {
  {
    Negotiator n = operational();
    ASSERT_TRUE(login(n, {{"MaxBurstLength", "4096"}}, Stage::operational).step.status.ok());
    EXPECT_EQ(code(login(n, {{"MaxBurstLength", "8192"}}, Stage::operational).step.status), kLoginInitiatorError);
  }
  {
    Negotiator n = operational();
    EXPECT_EQ(code(login(n, {kInit}, Stage::operational).step.status), kLoginInitiatorError);
  }
  {
    Negotiator n({});
    EXPECT_EQ(code(login(n, {kInit, kTarget, {"AuthMethod", "None"}}, Stage::operational).step.status),
              kLoginInvalidDuringLogin);
  }
  for (const char* key : {"TargetAlias", "TargetPortalGroupTag", "TargetAddress"}) {
    // The target's declarations, from the initiator (the fuzzer found the first response
    // then held TargetPortalGroupTag twice).
    Negotiator n({});
    EXPECT_EQ(code(login(n, {kInit, kTarget, {key, "1"}}, Stage::security).step.status), kLoginInitiatorError) << key;
  }
  {  // a response word for nothing offered: ignored
    Negotiator n = operational();
    const Reply r = login(n, {{"MaxConnections", "NotUnderstood"}}, Stage::operational);
    EXPECT_TRUE(r.step.status.ok());
    EXPECT_EQ(r.answers.count("MaxConnections"), 0u);
  }
  {  // after the login is complete
    Negotiator n = operational();
    ASSERT_TRUE(login(n, {}, Stage::operational, true).step.transit);
    EXPECT_EQ(code(login(n, {}, Stage::operational, true).step.status), kLoginInvalidDuringLogin);
  }
}

TEST(IscsiNegotiation, TargetOffersWhatTheDefaultWouldExceed) {
  TargetOptions o;
  o.immediate_data = false;
  o.max_burst_length = 65536;
  o.first_burst_length = 8192;
  o.default_time2retain = 20;
  Negotiator n = operational(o);
  Reply r = login(n, {{"HeaderDigest", "None"}}, Stage::operational, true);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_FALSE(r.step.transit);  // held until the offers are answered
  EXPECT_EQ(r.answers.at("ImmediateData"), "No");
  EXPECT_EQ(r.answers.at("MaxBurstLength"), "65536");
  EXPECT_EQ(r.answers.at("FirstBurstLength"), "8192");
  EXPECT_EQ(r.answers.count("DefaultTime2Retain"), 0u);  // the default is within the target's value
  EXPECT_EQ(r.answers.count("MaxConnections"), 0u);
  r = login(n, {{"ImmediateData", "No"}, {"MaxBurstLength", "32768"}, {"FirstBurstLength", "8192"}}, Stage::operational,
            true);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_TRUE(r.step.transit);
  EXPECT_EQ(r.count, 0u);  // answers are not answered
  EXPECT_FALSE(n.params().immediate_data);
  EXPECT_EQ(n.params().max_burst_length, 32768u);
  EXPECT_EQ(n.params().first_burst_length, 8192u);

  // An answer the rule does not allow fails the login.
  Negotiator m = operational(o);
  login(m, {}, Stage::operational, true);
  EXPECT_EQ(code(login(m, {{"ImmediateData", "Yes"}}, Stage::operational).step.status), kLoginInitiatorError);
  Negotiator k = operational(o);
  login(k, {}, Stage::operational, true);
  EXPECT_EQ(code(login(k, {{"MaxBurstLength", "131072"}}, Stage::operational).step.status), kLoginInitiatorError);
}

TEST(IscsiNegotiation, DigestsRequiredByTheTarget) {
  TargetOptions o;
  o.accept_no_digest = false;
  Negotiator n = operational(o);
  Reply r = login(n, {{"HeaderDigest", "None,CRC32C"}}, Stage::operational, true);
  EXPECT_EQ(r.answers.at("HeaderDigest"), "CRC32C");
  EXPECT_EQ(r.answers.at("DataDigest"), "CRC32C");  // offered
  EXPECT_FALSE(r.step.transit);
  r = login(n, {{"DataDigest", "CRC32C"}}, Stage::operational, true);
  EXPECT_TRUE(r.step.transit);
  EXPECT_TRUE(n.params().data_digest);
  EXPECT_TRUE(n.params().header_digest);
  // Offering only None (or refusing the offer) fails the login: None is not acceptable.
  Negotiator m = operational(o);
  EXPECT_EQ(code(login(m, {{"HeaderDigest", "None"}}, Stage::operational).step.status), kLoginInitiatorError);
  Negotiator k = operational(o);
  login(k, {}, Stage::operational, true);
  EXPECT_EQ(code(login(k, {{"HeaderDigest", "None"}}, Stage::operational).step.status), kLoginInitiatorError);
}

TEST(IscsiNegotiation, RejectWhereTheDefaultIsUnacceptableFails) {
  TargetOptions o;
  o.immediate_data = false;
  o.max_burst_length = 65536;
  Negotiator n = operational(o);
  EXPECT_EQ(code(login(n, {{"ImmediateData", "Maybe"}}, Stage::operational).step.status), kLoginInitiatorError);
  Negotiator m = operational(o);
  EXPECT_EQ(code(login(m, {{"MaxBurstLength", "100"}}, Stage::operational).step.status), kLoginInitiatorError);
  Negotiator k = operational(o);  // a key whose default is fine is still just rejected
  const Reply r = login(k, {{"MaxOutstandingR2T", "0"}}, Stage::operational);
  EXPECT_TRUE(r.step.status.ok());
  EXPECT_EQ(r.answers.at("MaxOutstandingR2T"), "Reject");
}

TEST(IscsiNegotiation, Transitions) {
  {  // security straight to full feature: the target goes through the operational stage
    Negotiator n({});
    Reply r = login(n, {kInit, kTarget}, Stage::security, true, Stage::full_feature);
    ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
    EXPECT_TRUE(r.step.transit);
    EXPECT_EQ(r.step.nsg, Stage::operational);
    r = login(n, {}, Stage::operational, true, Stage::full_feature);
    EXPECT_TRUE(r.step.transit);
    EXPECT_EQ(r.answers.at("MaxRecvDataSegmentLength"), "262144");
    EXPECT_TRUE(n.complete());
  }
  {  // straight into the operational stage (no security stage) when None is accepted
    Negotiator n({});
    Reply r = login(n, {kInit, kTarget, {"MaxBurstLength", "8192"}}, Stage::operational, true, Stage::full_feature);
    ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
    EXPECT_EQ(r.answers.at("MaxBurstLength"), "8192");
    // The default FirstBurstLength (65536) would now exceed MaxBurstLength: the target offers.
    EXPECT_EQ(r.answers.at("FirstBurstLength"), "8192");
    EXPECT_FALSE(r.step.transit);
    r = login(n, {{"FirstBurstLength", "4096"}}, Stage::operational, true, Stage::full_feature);
    ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
    EXPECT_TRUE(r.step.transit);
    EXPECT_EQ(n.params().first_burst_length, 4096u);
  }
  {  // T clear: no transit; operational back to security: refused
    Negotiator n = operational();
    Reply r = login(n, {}, Stage::operational, false);
    EXPECT_FALSE(r.step.transit);
    EXPECT_EQ(r.step.nsg, Stage::operational);
    EXPECT_EQ(code(login(n, {}, Stage::operational, true, Stage::security).step.status), kLoginInitiatorError);
  }
}

TEST(IscsiNegotiation, AuthenticationRequired) {
  TargetOptions o;
  o.auth_methods = {AuthMethod::chap};
  o.chap = ChapCredentials{"user", "initiator-secret", "", ""};
  {
    Negotiator n(o);
    EXPECT_EQ(code(login(n, {kInit, kTarget}, Stage::operational, true).step.status), kLoginAuthFailure);
  }
  {
    Negotiator n(o);
    Reply r = login(n, {kInit, kTarget, {"AuthMethod", "None"}}, Stage::security, true, Stage::operational);
    EXPECT_EQ(code(r.step.status), kLoginAuthFailure);
  }
  {  // CHAP chosen, but the initiator tries to leave before answering the challenge
    Negotiator n(o);
    Reply r = login(n, {kInit, kTarget, {"AuthMethod", "None,CHAP"}}, Stage::security);
    EXPECT_EQ(r.answers.at("AuthMethod"), "CHAP");
    r = login(n, {{"CHAP_A", "5"}}, Stage::security, true, Stage::operational);
    EXPECT_EQ(code(r.step.status), kLoginAuthFailure);
  }
  {  // libiscsi offers AuthMethod=CHAP,None with T set: the target picks CHAP and stays (T clear)
    Negotiator n(o);
    Reply r = login(n, {kInit, kTarget, {"AuthMethod", "CHAP,None"}}, Stage::security, true, Stage::operational);
    ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
    EXPECT_EQ(r.answers.at("AuthMethod"), "CHAP");
    EXPECT_FALSE(r.step.transit);
    EXPECT_EQ(r.step.nsg, Stage::security);
    r = login(n, {{"CHAP_A", "5"}}, Stage::security);
    EXPECT_TRUE(r.step.status.ok()) << r.step.status.message;
    EXPECT_FALSE(n.authenticated());
  }
  {  // CHAP chosen, then a request in the operational stage without any transit
    Negotiator n(o);
    login(n, {kInit, kTarget, {"AuthMethod", "CHAP"}}, Stage::security);
    EXPECT_EQ(code(login(n, {}, Stage::operational, true).step.status), kLoginInitiatorError);
    EXPECT_FALSE(n.authenticated());
  }
  {  // CHAP keys without CHAP agreed
    Negotiator n({});
    EXPECT_EQ(code(login(n, {kInit, kTarget, {"CHAP_A", "5"}}, Stage::security).step.status), kLoginInitiatorError);
  }
}

TEST(IscsiNegotiation, ChapLoginEndToEnd) {
  TargetOptions o;
  o.auth_methods = {AuthMethod::chap};
  o.chap = ChapCredentials{"user", "initiator-secret", "target", "target-secret-1"};
  uint8_t next = 100;
  Negotiator n(o, [&next](uint8_t* out, size_t len) {
    for (size_t i = 0; i < len; ++i) out[i] = next++;
  });
  Reply r = login(n, {kInit, kTarget, {"AuthMethod", "CHAP"}}, Stage::security);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_EQ(r.answers.at("AuthMethod"), "CHAP");
  r = login(n, {{"CHAP_A", "5"}}, Stage::security);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_EQ(r.answers.at("CHAP_I"), "100");
  const auto challenge = decode_binary(r.answers.at("CHAP_C"), 1024);
  ASSERT_TRUE(challenge);
  const std::vector<uint8_t> mine(16, 0x5a);
  r = login(n,
            {{"CHAP_N", "user"},
             {"CHAP_R", encode_hex(chap_response(100, "initiator-secret", *challenge))},
             {"CHAP_I", "9"},
             {"CHAP_C", encode_hex(mine)}},
            Stage::security, true, Stage::operational);
  ASSERT_TRUE(r.step.status.ok()) << r.step.status.message;
  EXPECT_TRUE(r.step.transit);
  EXPECT_EQ(r.answers.at("CHAP_N"), "target");
  EXPECT_EQ(r.answers.at("CHAP_R"), encode_hex(chap_response(9, "target-secret-1", mine)));
  EXPECT_EQ(n.params().auth_method, AuthMethod::chap);

  Negotiator bad(o);
  login(bad, {kInit, kTarget, {"AuthMethod", "CHAP"}}, Stage::security);
  login(bad, {{"CHAP_A", "5"}}, Stage::security);
  r = login(bad, {{"CHAP_N", "user"}, {"CHAP_R", encode_hex(ChapDigest{})}}, Stage::security, true, Stage::operational);
  EXPECT_EQ(code(r.step.status), kLoginAuthFailure);
}

}  // namespace
}  // namespace sluice::iscsi
