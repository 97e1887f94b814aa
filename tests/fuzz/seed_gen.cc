// Writes the seed corpora of the fuzz targets:
//   fuzz_seed_gen <dir>   ->  <dir>/blob_load_fuzz/*, <dir>/records_fuzz/*, <dir>/fs_records_fuzz/*,
//                             <dir>/nbd_protocol_fuzz/*, <dir>/nvme_tcp_pdu_fuzz/*,
//                             <dir>/iscsi_pdu_fuzz/*, <dir>/iscsi_login_fuzz/*, <dir>/scsi_cdb_fuzz/*
// scripts/fuzz.sh --seeds regenerates tests/fuzz/corpus with it. Seeds are small: they
// point the fuzzer at each input kind and each record type, and the fuzzer does the rest.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/coding.h"
#include "blob/format.h"
#include "blob/model.h"
#include "blob/records.h"
#include "blob_image.h"
#include "fs/format.h"
#include "nvme/tcp_pdu.h"
#include "target/iscsi/pdu.h"
#include "target/nbd/protocol.h"

namespace {

using namespace sluice::blob;
using sluice::fuzz::BaseImage;

std::filesystem::path root;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  sluice::put_le<uint32_t>(s.data(), v);
  return s;
}
std::string le16(uint16_t v) {
  std::string s(2, '\0');
  sluice::put_le<uint16_t>(s.data(), v);
  return s;
}
std::string le64(uint64_t v) {
  std::string s(8, '\0');
  sluice::put_le<uint64_t>(s.data(), v);
  return s;
}

std::string encode(const std::vector<Record>& rs) {
  std::string out;
  for (const Record& r : rs) encode_record(r, out);
  return out;
}

// kind 0: one patch {u32 offset, u8 len, bytes}.
std::string patch(uint32_t offset, const std::string& bytes) {
  return le32(offset) + static_cast<char>(bytes.size()) + bytes;
}
// kind 1: one payload patch {u16 offset, u8 len, bytes}.
std::string payload_patch(uint16_t offset, const std::string& bytes) {
  return le16(offset) + static_cast<char>(bytes.size()) + bytes;
}
std::string mode(uint8_t m) { return std::string(1, static_cast<char>(m)); }
std::string sel(uint8_t region, uint8_t index) { return std::string(1, static_cast<char>(sluice::fuzz::selector(region, index))); }

// A journal's worth of records touching every type, valid against the base image's blobs
// (ids 1..4 exist there: 1 thick, 2 clone of snapshot 3, 4 clone of 3).
std::vector<Record> journal_records() {
  return {
      Record::make_create(10, kFlagThin, 0, 16),
      Record::make_extent(10, 0, 2, 40),
      Record::make_xattr_set(10, false, "name", "fuzzed"),
      Record::make_xattr_set(10, true, "i", std::string(20, 'x')),
      Record::make_xattr_remove(10, false, "name"),
      Record::make_resize(10, 1),
      Record::make_set_flags(10, kFlagThin | kFlagReadOnly | kFlagSnapshot),
      Record::make_create(11, kFlagThin, 10, 1),
      Record::make_set_parent(11, 0),
      Record::make_set_parent(11, 10),
      Record::make_super_blob(10),
      Record::make_next_id(20),
      Record::make_clusters(RecordType::dirty, {44, 45, 46}),
      Record::make_clusters(RecordType::clean, {45}),
      Record::make_remove(11),
  };
}

void blob_load_seeds(const BaseImage& img) {
  using namespace sluice::fuzz;
  const std::string t = "blob_load_fuzz";
  write(t, "valid", mode(kKindPatch));
  write(t, "valid-ops", mode(kKindPatch | kBitOps));
  // Super block: the newer copy's generation, the geometry, the journal head (re-sealed).
  const uint32_t newest = static_cast<uint32_t>(img.super_copy) * kPageSize;
  write(t, "super-generation", mode(kKindPatch | kBitReseal) + patch(16, le64(1000)) + patch(kPageSize + 16, le64(999)));
  write(t, "super-geometry", mode(kKindPatch | kBitReseal) + patch(newest + 48, le32(1u << 30)) +
                                 patch(newest + 88, le64(0)));
  write(t, "super-journal-head", mode(kKindPatch | kBitReseal | kBitOps) + patch(newest + 112, le64(img.sb.journal_head_seq + 1)) +
                                     patch(newest + 120, le64(1)));
  write(t, "super-slot", mode(kKindPatch | kBitReseal) + patch(newest + 96, le32(1 - img.sb.active_ckpt)) +
                             patch(newest + 104, le64(img.sb.ckpt_seq - 1)));
  write(t, "super-zeroed", mode(kKindReplace) + sel(0, 0));
  write(t, "super-bitflip", mode(kKindPatch) + patch(newest + 200, "\x01"));
  // Checkpoint and journal pages: header fields (re-sealed) and payload records.
  const uint32_t ckpt0 = static_cast<uint32_t>(img.sb.ckpt_start(img.sb.active_ckpt)) * kPageSize;
  write(t, "ckpt-count", mode(kKindPatch | kBitReseal) + patch(ckpt0 + 40, le32(3)));
  write(t, "ckpt-payload-len", mode(kKindPatch | kBitReseal) + patch(ckpt0 + 44, le32(4033)));
  const std::string extra = encode({Record::make_xattr_set(1, false, "added", "value"),
                                    Record::make_extent(2, 9, 1, 50)});
  write(t, "ckpt-payload-records", mode(kKindPayload | kBitGrowPayload) + sel(1, 0) + payload_patch(0, encode({
      Record::make_next_id(7), Record::make_create(1, 0, 0, 2), Record::make_extent(1, 0, 2, 1)})) +
      payload_patch(200, extra));
  write(t, "ckpt-older-slot", mode(kKindPayload | kBitGrowPayload) + sel(2, 0) + payload_patch(8, extra));
  const uint32_t j0 = static_cast<uint32_t>(img.sb.journal_start + img.sb.journal_head_pos) * kPageSize;
  write(t, "journal-header", mode(kKindPatch | kBitReseal) + patch(j0 + 32, le64(img.sb.journal_head_seq + 1)) +
                                 patch(j0 + 40, le32(2)));
  // Regression: damaging the second batch hid the later (valid) ones; after a read-write
  // load, new commits reused their sequence numbers and a clean unload + load replayed a
  // stale batch (fixed in recovery.cc: the journal resumes past every sequence in the ring).
  write(t, "regress-stale-journal-batch", mode(kKindPayload | kBitGrowPayload | kBitOps) + sel(3, 1) +
                                              payload_patch(0, extra));
  std::string recs = encode(journal_records());
  write(t, "journal-append", mode(kKindAppend) + le16(static_cast<uint16_t>(recs.size())) + recs);
  const std::string two = encode({Record::make_create(30, 0, 0, 1)});
  write(t, "journal-append-2pages-ops", mode(kKindAppend | kBitOps) + le16(static_cast<uint16_t>(two.size())) + two +
                                            le16(static_cast<uint16_t>(extra.size())) + extra);
  write(t, "journal-page-replaced", mode(kKindReplace | kBitReseal) + sel(3, 0) + std::string(48, '\x07'));
}

void records_seeds() {
  const std::string t = "records_fuzz";
  auto seed = [&](const std::string& name, uint8_t clusters, const std::string& payload) {
    write(t, name, std::string(1, static_cast<char>(clusters)) + payload);
  };
  seed("empty", 0, "");
  seed("journal", 64, encode(journal_records()));
  // A real checkpoint: a model with thick, thin, snapshot and clone, dirty clusters.
  Model m(64);
  std::vector<Record> ops = {
      Record::make_create(1, 0, 0, 4),           Record::make_extent(1, 0, 4, 1),
      Record::make_xattr_set(1, false, "name", "a"), Record::make_create(2, kFlagThin, 0, 100),
      Record::make_extent(2, 7, 1, 10),          Record::make_extent(2, 50, 3, 20),
      Record::make_create(3, kFlagThin | kFlagReadOnly | kFlagSnapshot, 0, 100),
      Record::make_set_parent(2, 3),             Record::make_extent(2, 7, 1, 0),
      Record::make_extent(3, 7, 1, 10),          Record::make_create(4, kFlagThin, 3, 100),
      Record::make_super_blob(1),                Record::make_resize(1, 2),
      Record::make_clusters(RecordType::clean, {3}),
  };
  for (const Record& r : ops) {
    auto st = m.apply(r);
    if (!st.ok()) {
      std::fprintf(stderr, "seed model: %s\n", st.to_string().c_str());
      std::exit(1);
    }
  }
  seed("checkpoint", 64, encode(m.checkpoint_records()));
  seed("ops", 64, encode(ops));
  std::string truncated = encode({Record::make_create(5, 0, 0, 1)});
  truncated.resize(truncated.size() - 3);
  seed("truncated", 8, truncated);
  seed("cycle-attempt", 16, encode({Record::make_create(1, 0, 0, 1), Record::make_create(2, 0, 1, 1),
                                    Record::make_set_parent(1, 2), Record::make_remove(1)}));
  seed("unknown-type", 4, std::string("\x63\x00\x00\x00", 4));
  // Found by the fuzzer: the largest blob id once pushed next_id to a value its own
  // checkpoint record was refused for.
  seed("regress-max-blob-id", 4, encode({Record::make_create(Model::kMaxBlobId, 0, 0, 1),
                                         Record::make_create(Model::kMaxBlobId + 1, 0, 0, 1),
                                         Record::make_next_id(UINT64_MAX)}));
}

// One seed per decoder of fs_records_fuzz (byte 0 chooses it), from real encoders.
void fs_records_seeds() {
  using namespace sluice::fs;
  const std::string t = "fs_records_fuzz";
  auto seed = [&](const std::string& name, char which, const std::string& payload) {
    write(t, name, std::string(1, which) + payload);
  };
  seed("entry-file", 0, encode_entry({Kind::file, 7, "000012.sst"}));
  seed("entry-dir", 0, encode_entry({Kind::dir, 1, "db"}));
  seed("state", 1, encode_state({4096, 3, 1700000000000000000, kStateWriting}));
  std::string marker(kMarkerSize, '\0');
  encode_marker({9, 8192, 4096, 2, 0x12345678}, marker.data());
  seed("marker", 2, marker);
  seed("identity", 3, encode_identity());
  seed("uri", 4, "sluice://uring:/dev/loop0?cache=64M&format=1&root=/a//b/&wal_dir=/tmp/wal");
  seed("uri-device-options", 4, "sluice://malloc:256M?block=4096");
}

// JSON-RPC streams for rpc_fuzz: byte 0 is the chunk size minus one.
void rpc_seeds() {
  const std::string t = "rpc_fuzz";
  auto seed = [&](const std::string& name, char chunk, const std::string& stream) {
    write(t, name, std::string(1, chunk) + stream);
  };
  seed("version", 0, R"({"jsonrpc":"2.0","id":1,"method":"spdk_get_version"})");
  seed("pipelined", 7,
       R"({"jsonrpc":"2.0","id":"a","method":"probe","params":{"s":"x\"}","n":5,"f":true,"any":[1,{"k":null}]}})"
       "\n"
       R"({"jsonrpc":"2.0","id":2,"method":"must","params":{"s":"y","n":18446744073709551615}} )"
       R"({"jsonrpc":"2.0","method":"rpc_get_methods"})");
  seed("errors", 3,
       R"({"jsonrpc":"2.0","id":3,"method":"must","params":{"s":1,"n":-1}})"
       R"({"jsonrpc":"1.0","id":{},"method":5})"
       R"([{"jsonrpc":"2.0","id":4,"method":"save_config"}])"
       R"({"jsonrpc":"2.0","id":5,"method":"probe","params":{"strict":true,"typo":0}})");
  seed("config", 127,
       R"({"subsystems":[{"subsystem":"x","config":[{"method":"must","params":{"s":"a","n":1}},{"method":"nope"}]},)"
       R"({"subsystem":"y","config":null}]})");
  seed("garbage", 0, "{\"a\":\"\xff\xfe\"}  }");
}

// Reproducers of open issues: they crash until the issue is fixed, so they live outside the
// seed corpus (scripts/fuzz.sh must pass on the corpus). See tests/fuzz/README.md.
void repro_inputs(const BaseImage& img, const std::filesystem::path& dir) {
  using namespace sluice::fuzz;
  std::filesystem::create_directories(dir);
  const uint32_t newest = static_cast<uint32_t>(img.super_copy) * kPageSize;
  // A super block naming a 4 GiB journal on an 8 GiB device: recovery allocates it whole.
  std::ofstream(dir / "blob_load_fuzz-huge-journal", std::ios::binary)
      << mode(kKindPatch | kBitReseal | kBitBigDevice) + patch(newest + 72, le64(uint64_t{1} << 20)) +
             patch(newest + 80, le64((uint64_t{1} << 20) + 16));
}

}  // namespace

namespace {

// nbd_protocol_fuzz: byte 0 (the arrival step), then a client's stream: flags, options,
// requests (nbd_protocol_fuzz.cc).
namespace nbdp = sluice::nbd::proto;
std::string be(uint64_t v, int bytes) {
  std::string s(static_cast<size_t>(bytes), '\0');
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}
std::string nbd_option(uint32_t opt, const std::string& data) {
  return be(nbdp::kOptMagic, 8) + be(opt, 4) + be(data.size(), 4) + data;
}
std::string nbd_go(uint32_t opt, const std::string& name, std::vector<uint16_t> infos) {
  std::string d = be(name.size(), 4) + name + be(infos.size(), 2);
  for (uint16_t i : infos) d += be(i, 2);
  return nbd_option(opt, d);
}
std::string nbd_request(uint16_t flags, uint16_t type, uint64_t offset, uint32_t length) {
  return be(nbdp::kRequestMagic, 4) + be(flags, 2) + be(type, 2) + be(0x1234, 8) + be(offset, 8) + be(length, 4);
}
void nbd_protocol_seeds() {
  const std::string t = "nbd_protocol_fuzz";
  const std::string flags = be(nbdp::kClientFixedNewstyle | nbdp::kClientNoZeroes, 4);
  const std::string requests = nbd_request(0, nbdp::kCmdWrite, 512, 512) + std::string(512, 'w') +
                               nbd_request(0, nbdp::kCmdRead, 0, 4096) +
                               nbd_request(nbdp::kCmdFlagFua, nbdp::kCmdTrim, 4096, 8192) +
                               nbd_request(nbdp::kCmdFlagNoHole | nbdp::kCmdFlagFastZero, nbdp::kCmdWriteZeroes, 0, 512) +
                               nbd_request(0, nbdp::kCmdFlush, 0, 0) + nbd_request(0, nbdp::kCmdRead, 1 << 20, 512) +
                               nbd_request(0, nbdp::kCmdDisc, 0, 0);
  write(t, "go-requests", std::string(1, '\x0f') + flags + nbd_option(nbdp::kOptStructuredReply, "") +
                              nbd_go(nbdp::kOptGo, "disk", {nbdp::kInfoBlockSize, nbdp::kInfoName}) + requests);
  write(t, "list-info-abort", std::string(1, '\x03') + flags + nbd_option(nbdp::kOptList, "") +
                                  nbd_go(nbdp::kOptInfo, "ro", {}) + nbd_go(nbdp::kOptInfo, "nope", {}) +
                                  nbd_option(nbdp::kOptStartTls, "") + nbd_option(nbdp::kOptAbort, ""));
  write(t, "export-name-ro", std::string(1, '\x00') + be(0, 4) + nbd_option(nbdp::kOptExportName, "ro") +
                                 nbd_request(0, nbdp::kCmdWrite, 0, 4096) + std::string(4096, 'x') +
                                 nbd_request(0, nbdp::kCmdRead, 0, 4096));
  const std::string meta =
      be(4, 4) + "disk" + be(1, 4) + be(nbdp::kBaseAllocation.size(), 4) + std::string(nbdp::kBaseAllocation);
  write(t, "meta-context-block-status",
        std::string(1, '\x05') + flags + nbd_option(nbdp::kOptStructuredReply, "") +
            nbd_option(nbdp::kOptListMetaContext, be(4, 4) + "disk" + be(0, 4)) +
            nbd_option(nbdp::kOptSetMetaContext, meta) + nbd_go(nbdp::kOptGo, "disk", {}) +
            nbd_request(0, nbdp::kCmdBlockStatus, 0, 1 << 20) +
            nbd_request(nbdp::kCmdFlagReqOne, nbdp::kCmdBlockStatus, 7, 100) + nbd_request(0, nbdp::kCmdDisc, 0, 0));
  write(t, "bad-magic", std::string(1, '\x07') + flags + nbd_go(nbdp::kOptGo, "", {}) + std::string(28, '\xab'));
}

// nvme_tcp_pdu_fuzz: byte 0 (role, digests, PDA, window, IC in front), byte 1 (the arrival
// step), then the peer's PDUs (nvme_tcp_pdu_fuzz.cc), built with the codec itself.
namespace tcp = sluice::nvme::tcp;
std::string tcp_header(const uint8_t* b, size_t n) { return std::string(reinterpret_cast<const char*>(b), n); }
std::string tcp_with_data(const uint8_t* b, size_t n, const std::string& data, bool ddgst) {
  std::string s = tcp_header(b, n) + data;
  if (ddgst && !data.empty()) {
    uint8_t d[tcp::kDigestSize];
    tcp::put_digest(d, tcp::data_digest({reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
    s += tcp_header(d, sizeof d);
  }
  return s;
}
std::string tcp_mode(bool controller, bool hdgst, bool ddgst, int pda_index, bool window, size_t step) {
  const int mode = (controller ? 1 : 0) | (hdgst ? 2 : 0) | (ddgst ? 4 : 0) | (pda_index << 3) | (window ? 0x20 : 0);
  return std::string(1, static_cast<char>(mode)) + std::string(1, static_cast<char>(step - 1));
}
void nvme_tcp_pdu_seeds() {
  const std::string t = "nvme_tcp_pdu_fuzz";
  constexpr uint8_t kPdas[] = {0, 1, 7, 31};  // as the harness maps bits 3-4
  uint8_t b[tcp::kMaxBuiltSize];
  sluice::nvme::spec::Sqe sqe{};
  sqe.opc = sluice::nvme::spec::kIoWrite;
  sqe.cid = 5;
  sqe.nsid = 1;
  for (int variant = 0; variant < 4; ++variant) {
    const bool hdgst = variant & 1, ddgst = variant & 2;
    const int pda_index = variant == 3 ? 3 : 0;
    const tcp::TxParams tx{hdgst, ddgst, kPdas[pda_index]};
    const std::string suffix =
        std::string(hdgst ? "-hdgst" : "") + (ddgst ? "-ddgst" : "") + (pda_index ? "-pda31" : "");
    // A host's stream at a controller: ICReq, commands with and without in-capsule data,
    // H2CData answering an R2T, a TermReq.
    std::string host = tcp_header(b, tcp::build_ic_req(b, {0, kPdas[pda_index], uint8_t(variant), 3}));
    host += tcp_header(b, tcp::build_capsule_cmd(b, tx, sqe, 0));
    host += tcp_with_data(b, tcp::build_capsule_cmd(b, tx, sqe, 512), std::string(512, 'c'), ddgst);
    host += tcp_with_data(b, tcp::build_data(b, tcp::Role::host, tx, {5, 1, 0, 600, false, false}),
                          std::string(600, 'h'), ddgst);
    host += tcp_with_data(b, tcp::build_data(b, tcp::Role::host, tx, {5, 1, 600, 8, true, false}), std::string(8, 'l'),
                          ddgst);
    host += tcp_header(b, tcp::build_term_req(b, tcp::Role::host, tcp::Fes::pdu_sequence, 0, {}));
    write(t, "host-stream" + suffix, tcp_mode(true, hdgst, ddgst, pda_index, variant == 2, 7) + host);
    // A controller's stream at a host: ICResp, an R2T, C2HData with SUCCESS, a response.
    sluice::nvme::spec::Cqe cqe{};
    cqe.cid = 5;
    std::string ctrl = tcp_header(b, tcp::build_ic_resp(b, {0, 0, uint8_t(variant), 8192}));
    ctrl += tcp_header(b, tcp::build_r2t(b, tx, {5, 1, 0, 4096}));
    ctrl += tcp_with_data(b, tcp::build_data(b, tcp::Role::controller, tx, {6, 0, 0, 300, true, true}),
                          std::string(300, 'd'), ddgst);
    ctrl += tcp_header(b, tcp::build_capsule_resp(b, tx, cqe));
    write(t, "controller-stream" + suffix, tcp_mode(false, hdgst, ddgst, pda_index, variant == 1, 13) + ctrl);
  }
  // A controller's refusal of an ICReq, with the offending header.
  const size_t ic = tcp::build_ic_req(b, {1, 0, 0, 0});
  const std::string offending = tcp_header(b, ic);
  write(t, "term-req",
        tcp_mode(false, false, false, 0, false, 64) +
            tcp_header(b, tcp::build_term_req(b, tcp::Role::controller, tcp::Fes::unsupported_parameter, 8,
                                              {reinterpret_cast<const uint8_t*>(offending.data()), offending.size()})));
}

// iscsi_pdu_fuzz: byte 0 (role, digests, window, MaxRecvDataSegmentLength, AHS bound), byte 1
// (the arrival step), then the peer's PDUs (iscsi_pdu_fuzz.cc), built with the codec itself.
namespace isc = sluice::iscsi;
std::string isc_bytes(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
std::vector<uint8_t> isc_data(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string isc_mode(bool target, bool hd, bool dd, bool window, size_t step) {
  const int mode = (target ? 1 : 0) | (hd ? 2 : 0) | (dd ? 4 : 0) | (window ? 8 : 0);
  return std::string(1, static_cast<char>(mode)) + std::string(1, static_cast<char>(step - 1));
}
void iscsi_pdu_seeds() {
  const std::string t = "iscsi_pdu_fuzz";
  for (int variant = 0; variant < 4; ++variant) {
    const bool hd = variant & 1, dd = variant & 2;
    const isc::TxParams tx{hd, dd};
    const std::string suffix = std::string(hd ? "-hdgst" : "") + (dd ? "-ddgst" : "");
    // An initiator's stream at a target: login, a write with immediate data and its Data-Out,
    // a read with an extended CDB, a NOP-Out, a text request, task management, a SNACK, logout.
    std::vector<uint8_t> in;
    isc::LoginRequest login;
    login.transit = true;
    login.csg = 1;
    login.nsg = 3;
    isc::append_pdu(in, tx, login, isc_data(std::string("InitiatorName=iqn.2026-12.seed:i\0TargetName=t\0", 46)));
    isc::ScsiCommand wr;
    wr.write = true;
    wr.itt = 1;
    wr.expected_data_length = 1536;
    wr.cdb[0] = 0x2a;
    isc::append_pdu(in, tx, wr, std::vector<uint8_t>(512, 'w'));
    isc::DataOut out;
    out.final = true;
    out.itt = 1;
    out.buffer_offset = 512;
    isc::append_pdu(in, tx, out, std::vector<uint8_t>(1021, 'o'));
    isc::ScsiCommand read;
    read.read = true;
    read.itt = 2;
    isc::Ahs ahs;
    ahs.extended_cdb_length = 16;
    ahs.bidi_read_length = 4096;
    isc::append_pdu(in, tx, read, {}, &ahs);
    isc::append_pdu(in, tx, isc::NopOut{true, 0, 3, isc::kReservedTag, 1, 1}, std::vector<uint8_t>(5, 'p'));
    isc::append_pdu(in, tx, isc::TextRequest{}, isc_data(std::string("SendTargets=All\0", 16)));
    isc::append_pdu(in, tx, isc::TaskMgmtRequest{});
    isc::append_pdu(in, tx, isc::SnackRequest{});
    isc::append_pdu(in, tx, isc::LogoutRequest{});
    write(t, "initiator-stream" + suffix, isc_mode(true, hd, dd, variant == 2, 11) + isc_bytes(in));
    // A target's stream at an initiator.
    std::vector<uint8_t> tg;
    isc::LoginResponse lr;
    lr.transit = true;
    lr.csg = 1;
    lr.nsg = 3;
    isc::append_pdu(tg, tx, lr, isc_data(std::string("MaxRecvDataSegmentLength=8192\0", 30)));
    isc::append_pdu(tg, tx, isc::R2t{0, 1, 2, 3, 4, 5, 6, 512, 1024});
    isc::DataIn din;
    din.final = din.has_status = true;
    isc::append_pdu(tg, tx, din, std::vector<uint8_t>(777, 'd'));
    isc::append_pdu(tg, tx, isc::ScsiResponse{}, std::vector<uint8_t>(20, 's'));
    isc::append_pdu(tg, tx, isc::NopIn{});
    isc::append_pdu(tg, tx, isc::Reject{}, std::vector<uint8_t>(48, 0x01));
    isc::append_pdu(tg, tx, isc::AsyncMessage{});
    isc::append_pdu(tg, tx, isc::TextResponse{}, isc_data(std::string("TargetName=t\0", 13)));
    isc::append_pdu(tg, tx, isc::TaskMgmtResponse{});
    isc::append_pdu(tg, tx, isc::LogoutResponse{});
    write(t, "target-stream" + suffix, isc_mode(false, hd, dd, variant == 1, 17) + isc_bytes(tg));
  }
}

// iscsi_login_fuzz: byte 0 (the target's options), then records of flags (CSG, T, NSG, C,
// "answer the challenge"), 16-bit length and text (iscsi_login_fuzz.cc).
std::string login_record(int csg, bool transit, int nsg, bool cont, bool answer_chap, const std::string& text) {
  // CSG and NSG as the harness maps bits: 0 security, 1 operational, 2 full feature, 3 stage 2.
  auto bits = [](int stage) { return stage == 3 ? 2 : stage; };
  const int flags = bits(csg) | (transit ? 4 : 0) | (bits(nsg) << 3) | (cont ? 0x20 : 0) | (answer_chap ? 0x40 : 0);
  return std::string(1, static_cast<char>(flags)) + be(text.size(), 2) + text;
}
std::string keys(std::initializer_list<std::pair<std::string, std::string>> kvs) {
  std::string s;
  for (const auto& [k, v] : kvs) s += k + "=" + v + std::string(1, '\0');
  return s;
}
void iscsi_login_seeds() {
  const std::string t = "iscsi_login_fuzz";
  const std::string who = keys(
      {{"InitiatorName", "iqn.2026-12.fuzz:init"}, {"TargetName", "iqn.2026-12.fuzz:disk"}, {"SessionType", "Normal"}});
  const std::string ops = keys({{"HeaderDigest", "CRC32C,None"},
                                {"DataDigest", "None"},
                                {"MaxConnections", "1"},
                                {"InitialR2T", "No"},
                                {"ImmediateData", "Yes"},
                                {"MaxRecvDataSegmentLength", "262144"},
                                {"MaxBurstLength", "262144"},
                                {"FirstBurstLength", "65536"},
                                {"DefaultTime2Wait", "2"},
                                {"DefaultTime2Retain", "0"},
                                {"MaxOutstandingR2T", "1"},
                                {"DataPDUInOrder", "Yes"},
                                {"DataSequenceInOrder", "Yes"},
                                {"ErrorRecoveryLevel", "0"},
                                {"X-com.example", "1"}});
  write(t, "normal-none",
        std::string(1, '\0') + login_record(0, true, 1, false, false, who + keys({{"AuthMethod", "None"}})) +
            login_record(1, true, 3, false, false, ops));
  // The operational keys split over two PDUs with C set.
  write(t, "continued",
        std::string(1, '\x48') + login_record(1, false, 1, true, false, who + ops.substr(0, 40)) +
            login_record(1, true, 3, false, false, ops.substr(40)) +
            login_record(1, true, 3, false, false, keys({{"ImmediateData", "No"}})));
  const std::string chap = who + keys({{"AuthMethod", "CHAP,None"}});
  write(t, "chap",
        std::string(1, '\x01') + login_record(0, false, 0, false, false, chap) +
            login_record(0, false, 0, false, false, keys({{"CHAP_A", "5"}})) +
            login_record(0, true, 1, false, true, "") + login_record(1, true, 3, false, false, ops));
  write(t, "chap-mutual",
        std::string(1, '\x03') + login_record(0, false, 0, false, false, chap) +
            login_record(0, false, 0, false, false, keys({{"CHAP_A", "7,5"}})) +
            login_record(0, true, 1, false, true,
                         keys({{"CHAP_I", "7"}, {"CHAP_C", "0xf0e0d0c0b0a090807060504030201000"}})) +
            login_record(1, true, 3, false, false, ops));
  write(t, "chap-wrong",
        std::string(1, '\x01') + login_record(0, false, 0, false, false, chap) +
            login_record(0, false, 0, false, false, keys({{"CHAP_A", "5"}})) +
            login_record(0, true, 1, false, false,
                         keys({{"CHAP_N", "iqn.2026-12.fuzz:init"}, {"CHAP_R", "0b" + std::string(22, 'A') + "=="}})));
  write(t, "discovery",
        std::string(1, '\0') +
            login_record(0, true, 3, false, false,
                         keys({{"InitiatorName", "iqn.2026-12.fuzz:init"}, {"SessionType", "Discovery"}})) +
            login_record(1, true, 3, false, false, ops) +
            login_record(1, false, 1, false, false, keys({{"SendTargets", "All"}})));
  write(t, "offers",
        std::string(1, '\x1c') + login_record(1, true, 3, false, false, who) +
            login_record(1, true, 3, false, false,
                         keys({{"HeaderDigest", "CRC32C"},
                               {"DataDigest", "CRC32C"},
                               {"ImmediateData", "No"},
                               {"MaxBurstLength", "8192"},
                               {"FirstBurstLength", "4096"}})));
}

}  // namespace

// scsi_cdb_fuzz: byte 0 (CDB length - 1, nexus bit 5, LUN bit 6), bytes 1-2 the expected
// length (little-endian), the CDB, then data-out (scsi_cdb_fuzz.cc). One seed per kind of
// command: responses from memory, block I/O, parameter lists, reservations.
void scsi_cdb_seeds() {
  const std::string t = "scsi_cdb_fuzz";
  auto seed = [&](const std::string& name, std::string cdb, uint16_t expected, const std::string& out = {}) {
    std::string s;
    s += static_cast<char>(cdb.size() - 1);
    s += static_cast<char>(expected & 0xff);
    s += static_cast<char>(expected >> 8);
    write(t, name, s + cdb + out);
  };
  auto bytes = [](std::initializer_list<int> v) {
    std::string s;
    for (int b : v) s += static_cast<char>(b);
    return s;
  };
  seed("inquiry", bytes({0x12, 0, 0, 0, 0xff, 0}), 255);
  seed("inquiry-vpd-b0", bytes({0x12, 1, 0xb0, 0, 0xff, 0}), 255);
  seed("read-capacity-16", bytes({0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}), 32);
  seed("read-10", bytes({0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0}), 4096);
  seed("write-10", bytes({0x2a, 0, 0, 0, 0, 8, 0, 0, 2, 0}), 1024, std::string(1024, 'w'));
  seed("mode-sense-10-all", bytes({0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0, 0}), 4096);
  seed("report-luns", bytes({0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}), 256);
  seed("unmap", bytes({0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}), 24,
       bytes({0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0, 0, 0}));
  seed("compare-and-write", bytes({0x89, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0}), 1024, std::string(1024, 0));
  seed("pr-out-register", bytes({0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0}), 24,
       bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0}));
  seed("report-opcodes", bytes({0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}), 4096);
}

// vhost_chain_fuzz: ring size 16 (byte 0 = 4), EVENT_IDX on or off, start index 0, then the
// guest's memory at 0x10000: descriptor table, available ring at 256, used ring at 296,
// buffers from 1024.
std::string vhost_desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  return le64(addr) + le32(len) + le16(flags) + le16(next);
}
std::string vhost_guest(const std::vector<std::pair<uint16_t, std::string>>& descs, std::vector<uint16_t> heads,
                        const std::vector<std::pair<uint32_t, std::string>>& extra = {}) {
  std::string mem(4096, '\0');
  for (const auto& [i, d] : descs) mem.replace(16u * i, d.size(), d);
  mem.replace(256, 2, le16(0));
  mem.replace(258, 2, le16(static_cast<uint16_t>(heads.size())));
  for (size_t i = 0; i < heads.size(); ++i) mem.replace(260 + 2 * i, 2, le16(heads[i]));
  for (const auto& [off, bytes] : extra) mem.replace(off, bytes.size(), bytes);
  return mem;
}
void vhost_chain_seeds() {
  const std::string t = "vhost_chain_fuzz";
  constexpr uint64_t g = 0x10000;
  constexpr uint16_t next = 1, dev_writes = 2, indirect = 4;
  const std::string head = std::string(1, 4) + std::string(1, 1) + std::string(1, 0);
  write(t, "blk-read", head + vhost_guest({{0, vhost_desc(g + 1024, 16, next, 1)}, {1, vhost_desc(g + 2048, 512, next | dev_writes, 2)},
                                          {2, vhost_desc(g + 3072, 1, dev_writes, 0)}},
                                         {0}));
  write(t, "indirect", head + vhost_guest({{3, vhost_desc(g + 1024, 48, indirect, 0)}}, {3},
                                         {{1024, vhost_desc(g + 2048, 16, next, 1) + vhost_desc(g + 2560, 512, next | dev_writes, 2) +
                                                     vhost_desc(g + 3072, 1, dev_writes, 0)}}));
  write(t, "loop", head + vhost_guest({{0, vhost_desc(g + 1024, 16, next, 1)}, {1, vhost_desc(g + 1024, 16, next, 0)}}, {0}));
  write(t, "two-requests", std::string(1, 4) + std::string(1, 0) + std::string(1, 0) +
                               vhost_guest({{0, vhost_desc(g + 1024, 16, next, 1)}, {1, vhost_desc(g + 3072, 1, dev_writes, 0)},
                                            {5, vhost_desc(g + 2048, 16, 0, 0)}},
                                           {0, 5}));
}

// vhost_scsi_fuzz: vhost_chain_fuzz's layout with virtio-scsi requests: the request at 1024,
// the response at 2048, data at 3072.
std::string scsi_cmd(uint8_t target, const std::vector<uint8_t>& cdb) {
  std::string req(51, '\0');  // lun[8], tag, task_attr, prio, crn, cdb[32]
  req[0] = 1;
  req[1] = static_cast<char>(target);
  for (size_t i = 0; i < cdb.size(); ++i) req[19 + i] = static_cast<char>(cdb[i]);
  return req;
}
void vhost_scsi_seeds() {
  const std::string t = "vhost_scsi_fuzz";
  constexpr uint64_t g = 0x10000;
  constexpr uint16_t next = 1, dev_writes = 2;
  const std::string head = std::string(1, 4) + std::string(1, 1) + std::string(1, 0);
  const std::string lun0 = std::string(1, 1) + std::string(7, '\0');
  write(t, "inquiry", head + vhost_guest({{0, vhost_desc(g + 1024, 51, next, 1)}, {1, vhost_desc(g + 2048, 108, next | dev_writes, 2)},
                                         {2, vhost_desc(g + 3072, 96, dev_writes, 0)}},
                                        {0}, {{1024, scsi_cmd(0, {0x12, 0, 0, 0, 96, 0})}}));
  write(t, "write-10", head + vhost_guest({{0, vhost_desc(g + 1024, 51, next, 1)}, {1, vhost_desc(g + 3072, 512, next, 2)},
                                          {2, vhost_desc(g + 2048, 108, dev_writes, 0)}},
                                         {0}, {{1024, scsi_cmd(0, {0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0})}}));
  write(t, "tmf-lun-reset", head + vhost_guest({{0, vhost_desc(g + 1024, 24, next, 1)}, {1, vhost_desc(g + 2048, 1, dev_writes, 0)}},
                                               {0}, {{1024, le32(0) + le32(5) + lun0 + le64(0)}}));
  write(t, "an-query", head + vhost_guest({{0, vhost_desc(g + 1024, 16, next, 1)}, {1, vhost_desc(g + 2048, 5, dev_writes, 0)}},
                                          {0}, {{1024, le32(1) + lun0 + le32(0x10)}}));
}

// vhost_session_fuzz: the messages QEMU sends to start a vhost-user-blk device, each record
// [request, flags, descriptors, length, payload]; descriptor byte 1 attaches one memfd.
std::string vhost_msg(uint8_t request, const std::string& payload, uint8_t fds = 0, uint8_t flags = 1) {
  return std::string(1, static_cast<char>(request)) + std::string(1, static_cast<char>(flags)) +
         std::string(1, static_cast<char>(fds)) + std::string(1, static_cast<char>(payload.size())) + payload;
}
void vhost_session_seeds() {
  const std::string t = "vhost_session_fuzz";
  constexpr uint64_t user = 0x7000000;
  const std::string features = le64((1ull << 32) | (1ull << 30) | (1ull << 29) | (1ull << 28));
  std::string start = vhost_msg(3, "") + vhost_msg(1, "") + vhost_msg(15, "") + vhost_msg(16, le64(0x1209)) +
                      vhost_msg(2, features) + vhost_msg(17, "") +
                      vhost_msg(5, le32(1) + le32(0) + le64(0x10000) + le64(64 << 10) + le64(user) + le64(0), 1);
  std::string ring = vhost_msg(8, le32(0) + le32(16)) + vhost_msg(10, le32(0) + le32(0)) +
                     vhost_msg(9, le32(0) + le32(0) + le64(user) + le64(user + 0x400) + le64(user + 0x200) + le64(0)) +
                     vhost_msg(13, le64(0x100)) + vhost_msg(12, le64(0x100), 0, 9) + vhost_msg(18, le32(0) + le32(1));
  write(t, "blk-start", start + ring + vhost_msg(24, le32(0) + le32(60) + le32(0) + std::string(60, '\0')) +
                            vhost_msg(11, le32(0) + le32(0)));
  write(t, "inflight", start + vhost_msg(31, le64(0) + le64(0) + le16(1) + le16(16)) + ring + vhost_msg(4, ""));
  write(t, "bad-size", vhost_msg(2, le32(1)));
  // Guest memory with a ring holding a virtio-blk flush (descriptors 0-1) at its start.
  std::string page(4096, '\0');
  page.replace(0, 16, le64(0x10800) + le32(16) + le16(1) + le16(1));
  page.replace(16, 16, le64(0x10900) + le32(1) + le16(2) + le16(0));
  page.replace(0x200, 6, le16(0) + le16(1) + le16(0));
  page.replace(0x800, 4, le32(4));
  const std::string table = le32(1) + le32(0) + le64(0x10000) + le64(64 << 10) + le64(user) + le64(0);
  write(t, "blk-request", vhost_msg(2, features) + vhost_msg(5, table, 0x81) + page + ring +
                              vhost_msg(5, table, 0x81) + page + vhost_msg(11, le32(0) + le32(0)));
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s <corpus dir> [<reproducer dir>]\n", argv[0]);
    return 2;
  }
  root = argv[1];
  blob_load_seeds(sluice::fuzz::base_image());
  records_seeds();
  fs_records_seeds();
  nbd_protocol_seeds();
  nvme_tcp_pdu_seeds();
  iscsi_pdu_seeds();
  iscsi_login_seeds();
  scsi_cdb_seeds();
  vhost_chain_seeds();
  vhost_session_seeds();
  vhost_scsi_seeds();
  rpc_seeds();
  if (argc == 3) repro_inputs(sluice::fuzz::base_image(), argv[2]);
  return 0;
}
