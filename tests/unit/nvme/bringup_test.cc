// Controller bring-up, identify, queue creation limits, logs and clean shutdown, and the
// model's own refusals (it must check what a real controller checks).
#include <vector>

#include <gmock/gmock.h>

#include "nvme_test_support.h"

namespace sluice::nvme::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(ModelTest, BringUpIdentifiesControllerAndNamespaces) {
  ModelOptions mo;
  mo.namespaces = {{1, 512, 4096}, {3, 4096, 256}};
  start(mo);
  const ControllerInfo& info = ctrl_->info();
  EXPECT_EQ(info.transport, "model");
  EXPECT_EQ(info.serial, "SLUICEMODEL0001");
  EXPECT_EQ(info.model, "Sluice NVMe controller model");
  EXPECT_EQ(info.firmware, "1.0");
  EXPECT_EQ(info.version, 0x00010400u);
  EXPECT_EQ(info.max_transfer_bytes, 256u << 10);  // MDTS 6
  EXPECT_EQ(info.max_queue_entries, 1024u);
  EXPECT_EQ(info.io_queues, 16);  // asked for 64, the model has 16
  EXPECT_TRUE(info.supports_dsm);
  EXPECT_TRUE(info.supports_write_zeroes);
  EXPECT_TRUE(info.volatile_write_cache);
  auto ns = ctrl_->namespaces();
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(ns[0].nsid, 1u);
  EXPECT_EQ(ns[0].block_size, 512u);
  EXPECT_EQ(ns[0].size_blocks, 4096u);
  EXPECT_EQ(ns[1].nsid, 3u);
  EXPECT_EQ(ns[1].block_size, 4096u);
  EXPECT_TRUE(ns[1].deallocate_reads_zeroes);
  EXPECT_EQ(ctrl_->namespace_info(2).status().code(), Errc::not_found);
  EXPECT_TRUE(model_->enabled());
  EXPECT_EQ(model_->counters().enables, 1u);
}

TEST_F(ModelTest, ControllerThatNeverBecomesReadyFailsAfterCapTimeout) {
  ModelOptions mo;
  mo.never_ready = true;
  mo.timeout_units = 1;  // 500 ms
  model_ = std::make_shared<ControllerModel>(mo);
  auto c = Controller::attach(model_->make_device());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::io_error);
  EXPECT_THAT(c.status().message(), HasSubstr("did not become ready within CAP.TO (500 ms)"));
}

TEST_F(ModelTest, DestructionShutsDownCleanly) {
  start();
  { auto q = queue(); }
  EXPECT_EQ(model_->io_queue_count(), 0u);  // the queue deleted its SQ and CQ
  ctrl_.reset();
  EXPECT_TRUE(model_->shutdown_complete());
  EXPECT_EQ(model_->counters().shutdowns, 1u);
  EXPECT_EQ(model_->counters().unsafe_shutdowns, 0u);
}

TEST_F(ModelTest, CommandsAfterShutdownFail) {
  start();
  ASSERT_TRUE(ctrl_->shutdown().ok());
  EXPECT_FALSE(ctrl_->create_io_queue().ok());
  EXPECT_FALSE(ctrl_->smart_log().ok());
}

TEST_F(ModelTest, QueueIdsRunOutAndComeBack) {
  ModelOptions mo;
  mo.max_io_queues = 2;
  start(mo);
  auto a = queue(), b = queue();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id(), b->id());
  auto c = ctrl_->create_io_queue();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::busy);
  b.reset();
  auto d = queue();
  ASSERT_TRUE(d);
  EXPECT_EQ(model_->io_queue_count(), 2u);
}

TEST_F(ModelTest, QueueSizeIsCappedByMqes) {
  ModelOptions mo;
  mo.max_queue_entries = 64;
  start(mo);
  auto q = queue(1000);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->entries(), 64u);
  EXPECT_EQ(q->capacity(), 63u);
}

TEST_F(ModelTest, SmartLogCountsHostCommands) {
  start();
  auto q = queue();
  env::DmaBuffer buf(4096);
  fill_pattern(buf.data(), 4096, 1);
  ASSERT_TRUE(write(*q, buf.data(), 0, 8).ok());
  ASSERT_TRUE(read(*q, buf.data(), 0, 8).ok());
  ASSERT_TRUE(read(*q, buf.data(), 8, 8).ok());
  auto log = ctrl_->smart_log();
  ASSERT_TRUE(log.ok()) << log.status().to_string();
  EXPECT_EQ(log->host_writes, 1u);
  EXPECT_EQ(log->host_reads, 2u);
  EXPECT_EQ(log->data_units_written, 1u);  // 8 x 512 B rounds up to one unit of 1000
  EXPECT_EQ(log->temperature_kelvin, 313);
  EXPECT_EQ(log->available_spare, 100);
}

TEST_F(ModelTest, ErrorLogRecordsFailedCommands) {
  start();
  auto q = queue();
  model_->inject({q->id(), spec::kIoRead, 1, spec::make_status(spec::kSctMedia, spec::kScUnrecoveredReadError)});
  env::DmaBuffer buf(4096);
  Completion c = read(*q, buf.data(), 16, 8);
  EXPECT_FALSE(c.ok());
  auto log = ctrl_->error_log();
  ASSERT_TRUE(log.ok()) << log.status().to_string();
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].sqid, q->id());
  EXPECT_EQ((*log)[0].lba, 16u);
  EXPECT_EQ((*log)[0].status, spec::make_status(spec::kSctMedia, spec::kScUnrecoveredReadError));
  auto smart = ctrl_->smart_log();
  ASSERT_TRUE(smart.ok());
  EXPECT_EQ(smart->media_errors, 1u);
  EXPECT_EQ(smart->error_log_entries, 1u);
}

// ---- The model refuses what a controller refuses ----

Completion admin(Controller& ctrl, spec::Sqe cmd) {
  auto r = ctrl.admin_command(cmd, nullptr, 0);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : Completion{};
}

TEST_F(ModelTest, ModelRefusesBadQueueCreation) {
  start();
  env::DmaBuffer ring(4096);
  spec::Sqe cq = {};
  cq.opc = spec::kAdminCreateCq;
  cq.prp1 = env::dma_translate(ring.data());
  cq.cdw11 = 1;
  cq.cdw10 = 0 | (15u << 16);  // qid 0 is the admin queue
  EXPECT_EQ(status_text(admin(*ctrl_, cq).status), "invalid queue identifier (SCT 1 SC 0x01)");
  cq.cdw10 = 1 | (0xffffu << 16);  // larger than CAP.MQES
  EXPECT_EQ(status_text(admin(*ctrl_, cq).status), "invalid queue size (SCT 1 SC 0x02)");
  cq.cdw10 = 1 | (15u << 16);
  cq.prp1 += 64;  // not page-aligned
  EXPECT_EQ(admin(*ctrl_, cq).sc(), spec::kScPrpOffsetInvalid);

  spec::Sqe sq = {};
  sq.opc = spec::kAdminCreateSq;
  sq.prp1 = env::dma_translate(ring.data());
  sq.cdw10 = 1 | (15u << 16);
  sq.cdw11 = 1 | (1u << 16);  // CQ 1 does not exist
  EXPECT_EQ(status_text(admin(*ctrl_, sq).status), "completion queue invalid (SCT 1 SC 0x00)");

  spec::Sqe bogus = {};
  bogus.opc = 0x7f;
  EXPECT_EQ(status_text(admin(*ctrl_, bogus).status), "invalid command opcode (SCT 0 SC 0x01)");
}

TEST_F(ModelTest, ModelRefusesDeletingACompletionQueueInUse) {
  start();
  auto q = queue();
  spec::Sqe del = {};
  del.opc = spec::kAdminDeleteCq;
  del.cdw10 = q->id();
  EXPECT_EQ(status_text(admin(*ctrl_, del).status), "invalid queue deletion (SCT 1 SC 0x0c)");
}

TEST_F(ModelTest, ModelFlagsDoorbellValuesOutsideTheQueue) {
  start();
  auto q = queue(16);
  model_->write32(spec::sq_doorbell(q->id(), 0), 16);  // one past the last entry
  EXPECT_EQ(model_->violations(), 1u);
  EXPECT_THAT(model_->last_violation(), HasSubstr("tail 16 beyond its 16 entries"));
  model_->write32(spec::cq_doorbell(q->id(), 0), 3);  // nothing was posted
  EXPECT_EQ(model_->violations(), 2u);
  EXPECT_THAT(model_->last_violation(), HasSubstr("passes the 0 completions posted"));
  model_ = nullptr;  // the violations were the point
}

TEST_F(ModelTest, ModelChecksPrpsLikeAController) {
  start();
  env::DmaBuffer a(8192), b(4096);
  spec::Sqe id = {};
  id.opc = spec::kAdminIdentify;
  id.cdw10 = spec::kCnsController;
  id.prp1 = env::dma_translate(a.data()) + 2;  // not dword-aligned
  EXPECT_EQ(status_text(admin(*ctrl_, id).status), "PRP offset invalid (SCT 0 SC 0x13)");
  id.prp1 = env::dma_translate(a.data()) + 512;  // 4 KiB from an offset: needs PRP2, page-aligned
  id.prp2 = env::dma_translate(b.data()) + 8;
  EXPECT_EQ(admin(*ctrl_, id).sc(), spec::kScPrpOffsetInvalid);
  id.prp2 = env::dma_translate(b.data());
  EXPECT_TRUE(admin(*ctrl_, id).ok());
  EXPECT_EQ(spec::get<uint16_t>(a.data(), 512 + spec::idc::kVid), 0x1b36);
  EXPECT_TRUE(all_zero(b.data(), 512));  // PRP2 got bytes 3584..4095 (zero in the model)
  // Memory the driver never made reachable: a real IOMMU would fault the DMA.
  std::vector<uint8_t> heap(8192);
  id.prp1 = reinterpret_cast<uintptr_t>(heap.data()) / 4096 * 4096 + 4096;
  id.prp2 = 0;
  EXPECT_EQ(status_text(admin(*ctrl_, id).status), "data transfer error (SCT 0 SC 0x04)");
  EXPECT_EQ(model_->violations(), 1u);
  EXPECT_THAT(model_->last_violation(), HasSubstr("outside memory mapped for the device"));
  model_ = nullptr;  // the violation was the point
}

TEST(NvmeStatusText, DecodesStatusCodes) {
  using spec::make_status;
  EXPECT_EQ(status_text(make_status(0, 0x80)), "LBA out of range (SCT 0 SC 0x80)");
  EXPECT_EQ(status_text(make_status(2, 0x81, true)), "unrecovered read error (SCT 2 SC 0x81), do not retry");
  EXPECT_EQ(status_text(make_status(0, 0x7e)), "unknown status (SCT 0 SC 0x7e)");
  Completion c;
  c.status = make_status(0, 0x80);
  EXPECT_EQ(c.errc(), Errc::out_of_range);
  Status st = completion_status(c, "read of 8 blocks at 100");
  EXPECT_EQ(st.code(), Errc::out_of_range);
  EXPECT_EQ(st.message(), "read of 8 blocks at 100: LBA out of range (SCT 0 SC 0x80)");
  c.status = make_status(2, 0x80);
  EXPECT_EQ(c.errc(), Errc::io_error);
  c.status = make_status(0, spec::kScAbortRequested);
  EXPECT_EQ(c.errc(), Errc::aborted);
}

}  // namespace
}  // namespace sluice::nvme::testing
