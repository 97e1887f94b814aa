// The metadata model's edge cases that a live store rarely reaches but a damaged or hostile
// image can: blob ids at the end of their range.
#include <gtest/gtest.h>

#include "blob/model.h"
#include "blob/records.h"

namespace sluice::blob {
namespace {

TEST(ModelTest, LargestBlobIdCheckpointsAndRebuilds) {
  Model m(4);
  ASSERT_TRUE(m.apply(Record::make_create(Model::kMaxBlobId, 0, 0, 1)).ok());
  EXPECT_EQ(m.next_id(), Model::kMaxBlobId + 1);
  Model rebuilt(4);
  for (const Record& r : m.checkpoint_records()) {
    Status st = rebuilt.apply(r);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  EXPECT_EQ(rebuilt.next_id(), Model::kMaxBlobId + 1);
  EXPECT_NE(rebuilt.find(Model::kMaxBlobId), nullptr);
}

TEST(ModelTest, IdsPastTheRangeAreCorruptAndChangeNothing) {
  Model m(4);
  for (uint64_t id : {uint64_t{0}, Model::kMaxBlobId + 1, UINT64_MAX - 1, UINT64_MAX}) {
    Status st = m.apply(Record::make_create(id, 0, 0, 1));
    EXPECT_EQ(st.code(), Errc::corrupt) << id;
    EXPECT_FALSE(st.message().empty());
  }
  EXPECT_EQ(m.apply(Record::make_next_id(Model::kMaxBlobId + 2)).code(), Errc::corrupt);
  EXPECT_EQ(m.apply(Record::make_next_id(UINT64_MAX)).code(), Errc::corrupt);
  EXPECT_TRUE(m.blobs().empty());
  EXPECT_EQ(m.next_id(), 1u);
  EXPECT_TRUE(m.apply(Record::make_next_id(Model::kMaxBlobId + 1)).ok());
  EXPECT_EQ(m.next_id(), Model::kMaxBlobId + 1);
}

}  // namespace
}  // namespace sluice::blob
