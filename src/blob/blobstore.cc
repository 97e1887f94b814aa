// The public Blobstore facade: forwards to Store (metadata) and io.cc (data path).
#include "blob/blob.h"

#include "base/log.h"
#include "blob/io.h"
#include "blob/probe.h"
#include "blob/store.h"

namespace sluice::blob {

Blobstore::Blobstore(std::unique_ptr<Store> store) : store_(std::move(store)) {}

Blobstore::~Blobstore() {
  if (!store_) return;
  Status st = store_->unload();
  if (!st.ok()) log::error("blobstore: unload at destruction failed: {}", st.to_string());
}

Result<std::unique_ptr<Blobstore>> Blobstore::init(std::string_view bdev_name, const InitOptions& opts) {
  // Here, so that every caller (SluiceFS, lvol stores, the CLI, the plugin) gets the guard.
  if (!opts.force) SLUICE_RETURN_IF_ERROR(check_blank(bdev_name));
  auto s = Store::init(bdev_name, opts);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Blobstore>(new Blobstore(std::move(s.value())));
}

Result<std::unique_ptr<Blobstore>> Blobstore::load(std::string_view bdev_name, const LoadOptions& opts) {
  auto s = Store::load(bdev_name, opts);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Blobstore>(new Blobstore(std::move(s.value())));
}

Status Blobstore::unload() { return store_->unload(); }
void Blobstore::abandon() { store_->abandon(); }
Result<BlobId> Blobstore::create(const CreateOptions& o) { return store_->create(o); }
Status Blobstore::resize(BlobId id, uint64_t n) { return store_->resize(id, n); }
Status Blobstore::remove(BlobId id) { return store_->remove(id); }
Status Blobstore::set_xattr(BlobId id, std::string_view n, std::string_view v, bool internal) {
  return store_->set_xattr(id, n, v, internal);
}
Result<std::string> Blobstore::get_xattr(BlobId id, std::string_view n, bool internal) {
  return store_->get_xattr(id, n, internal);
}
Status Blobstore::remove_xattr(BlobId id, std::string_view n, bool internal) { return store_->remove_xattr(id, n, internal); }
Status Blobstore::set_read_only(BlobId id) { return store_->set_read_only(id); }
Result<BlobId> Blobstore::snapshot(BlobId id, const std::map<std::string, std::string>& x) { return store_->snapshot(id, x); }
Result<BlobId> Blobstore::clone(BlobId id, const std::map<std::string, std::string>& x) { return store_->clone(id, x); }
Status Blobstore::inflate(BlobId id) { return store_->inflate(id); }
Status Blobstore::decouple(BlobId id) { return store_->decouple(id); }
Status Blobstore::set_super_blob(BlobId id) { return store_->set_super_blob(id); }
Result<BlobId> Blobstore::super_blob() { return store_->super_blob(); }
std::vector<BlobId> Blobstore::list() { return store_->list(); }
Result<BlobInfo> Blobstore::info(BlobId id) { return store_->info(id); }
Result<std::vector<ClusterRun>> Blobstore::cluster_runs(BlobId id) { return store_->cluster_runs(id); }
StoreInfo Blobstore::store_info() { return store_->store_info(); }
std::vector<std::string> Blobstore::check() { return store_->check(); }
uint64_t Blobstore::checkpoint_pages_needed() { return store_->checkpoint_pages_needed(); }
Status Blobstore::sync_md() { return store_->sync_md(); }
Status Blobstore::push_md() { return store_->push_md(); }
Result<std::shared_ptr<Blob>> Blobstore::open(BlobId id) { return store_->open(id); }
Status Blobstore::close(std::shared_ptr<Blob> b) { return store_->close(std::move(b)); }

Result<BlobChannel*> Blobstore::get_channel() { return get_blob_channel(*store_); }
Status Blobstore::put_channel(BlobChannel* ch) { return put_blob_channel(*store_, ch); }
int Blobstore::poll(BlobChannel* ch) { return poll_blob_channel(ch); }

Status Blobstore::read(BlobChannel* ch, Blob& b, void* buf, uint64_t off, uint64_t len, bdev::IoCallback cb, void* arg) {
  iovec iov{buf, len * store_->super().io_unit};
  return blob_submit(*store_, ch, b, BlobOp::read, &iov, 1, off, len, cb, arg);
}
Status Blobstore::write(BlobChannel* ch, Blob& b, const void* buf, uint64_t off, uint64_t len, bdev::IoCallback cb,
                        void* arg) {
  iovec iov{const_cast<void*>(buf), len * store_->super().io_unit};
  return blob_submit(*store_, ch, b, BlobOp::write, &iov, 1, off, len, cb, arg);
}
Status Blobstore::readv(BlobChannel* ch, Blob& b, const iovec* iov, int n, uint64_t off, uint64_t len,
                        bdev::IoCallback cb, void* arg) {
  return blob_submit(*store_, ch, b, BlobOp::read, iov, n, off, len, cb, arg);
}
Status Blobstore::writev(BlobChannel* ch, Blob& b, const iovec* iov, int n, uint64_t off, uint64_t len,
                         bdev::IoCallback cb, void* arg) {
  return blob_submit(*store_, ch, b, BlobOp::write, iov, n, off, len, cb, arg);
}
Status Blobstore::unmap(BlobChannel* ch, Blob& b, uint64_t off, uint64_t len, bdev::IoCallback cb, void* arg) {
  // Clusters are returned by Store::deallocate (a metadata operation); on the data path an
  // unmap reads back as zeroes, which is what write_zeroes guarantees.
  return blob_submit(*store_, ch, b, BlobOp::write_zeroes, nullptr, 0, off, len, cb, arg);
}
Status Blobstore::write_zeroes(BlobChannel* ch, Blob& b, uint64_t off, uint64_t len, bdev::IoCallback cb, void* arg) {
  return blob_submit(*store_, ch, b, BlobOp::write_zeroes, nullptr, 0, off, len, cb, arg);
}
Status Blobstore::flush(BlobChannel* ch, bdev::IoCallback cb, void* arg) { return blob_flush(*store_, ch, cb, arg); }

}  // namespace sluice::blob
