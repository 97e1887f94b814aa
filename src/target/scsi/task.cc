// Completing tasks: status, sense, data-in and residuals; bdev back-pressure.
#include <algorithm>

#include "env/env.h"
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

Lun* task_lun(const Task* t) { return t->state.lc != nullptr ? t->state.lc->lun : nullptr; }
Device::Shared& shared(const Task* t) { return t->state.channel->device().shared(); }

void complete(Task* t) {
  if (t->state.locked) retire_write(t);
  env::dma_free(t->state.buf);
  t->state.buf = nullptr;
  t->state.channel->finished();
  t->done(t);
}

void complete_good(Task* t) {
  t->status = kStatusGood;
  complete(t);
}

void complete_status(Task* t, uint8_t status) {
  t->status = status;
  t->transferred = 0;
  complete(t);
}

void complete_check(Task* t, const SenseData& s) {
  const Lun* lun = task_lun(t);
  uint8_t buf[kMaxSenseLength];
  const size_t n = build_sense(s, lun != nullptr && lun->d_sense.load(std::memory_order_relaxed), buf);
  std::memcpy(t->sense.data(), buf, std::min(n, t->sense.size()));
  t->sense_length = static_cast<uint8_t>(std::min(n, t->sense.size()));
  t->status = kStatusCheckCondition;
  complete(t);
}

void complete_data_in(Task* t, const void* data, size_t n, uint32_t alloc) {
  size_t room = 0;
  for (int i = 0; i < t->iovcnt; ++i) room += t->iov[i].iov_len;
  room = std::min<size_t>(room, t->expected_length);
  const size_t want = std::min<size_t>(n, alloc);
  const size_t len = std::min(want, room);
  copy_to_iov(t, data, len);
  t->transferred = static_cast<uint32_t>(len);
  if (want > t->expected_length) {
    t->residual_kind = Residual::overflow;
    t->residual = static_cast<uint32_t>(want - t->expected_length);
  } else if (len < t->expected_length) {
    t->residual_kind = Residual::underflow;
    t->residual = static_cast<uint32_t>(t->expected_length - len);
  }
  complete_good(t);
}

void copy_to_iov(Task* t, const void* data, size_t n) {
  const auto* src = static_cast<const uint8_t*>(data);
  size_t done = 0;
  for (int i = 0; i < t->iovcnt && done < n; ++i) {
    const size_t k = std::min(t->iov[i].iov_len, n - done);
    std::memcpy(t->iov[i].iov_base, src + done, k);
    done += k;
  }
}

bool copy_from_iov(const Task* t, size_t offset, void* dst, size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  for (int i = 0; i < t->iovcnt && n > 0; ++i) {
    const size_t len = t->iov[i].iov_len;
    if (offset >= len) {
      offset -= len;
      continue;
    }
    const size_t k = std::min(len - offset, n);
    std::memcpy(out, static_cast<const uint8_t*>(t->iov[i].iov_base) + offset, k);
    out += k;
    n -= k;
    offset = 0;
  }
  return n == 0;
}

SenseData sense_of(Errc e, bool write) {
  switch (e) {
    case Errc::out_of_range: return illegal(asc::kLbaOutOfRange);
    case Errc::invalid_argument: return invalid_cdb_field(-1);
    case Errc::not_supported: return illegal(asc::kInvalidOpcode);
    case Errc::io_error:
      return write ? SenseData{.key = sense_key::kMediumError, .asc = asc::kWriteError}
                   : SenseData{.key = sense_key::kMediumError, .asc = asc::kUnrecoveredReadError};
    case Errc::no_space:
      return {.key = sense_key::kDataProtect, .asc = 0x2707};  // SPACE ALLOCATION FAILED WRITE PROTECT
    case Errc::aborted:
      // A hot-removed device: the initiator should stop using this LUN.
      return {.key = sense_key::kAbortedCommand, .asc = asc::kLunCommunicationFailure};
    default: return {.key = sense_key::kHardwareError, .asc = asc::kInternalTargetFailure};
  }
}

namespace {
void room_freed(void* arg) {
  auto* t = static_cast<Task*>(arg);
  submit_with_retry(t, t->state.retry, t->state.locked);
}
}  // namespace

void submit_with_retry(Task* t, SubmitFn submit, bool write) {
  t->state.retry = submit;
  const Status st = submit(t);
  if (st.ok()) return;
  if (st.code() == Errc::busy) {
    t->state.wait.fn = room_freed;
    t->state.wait.arg = t;
    if (bdev::wait_for_room(t->state.lc->ch, &t->state.wait).ok()) return;
  }
  complete_check(t, sense_of(st.code(), write));
}

}  // namespace sluice::scsi
