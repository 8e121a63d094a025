//! Sandboxes: user namespaces, id mapping, overlay mounts, chroot, running a step.
