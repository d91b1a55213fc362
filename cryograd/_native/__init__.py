"""Native kernels (C++ through XLA's FFI), built at install; loaded by `cryograd.physics._native`."""
