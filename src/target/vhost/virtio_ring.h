// Linux's split-ring layouts (<linux/virtio_ring.h>) without its legacy vring_init(), which
// is C only (an implicit void* conversion). Include this, never the Linux header directly.
#pragma once

#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY
#endif
#include <linux/virtio_ring.h>
