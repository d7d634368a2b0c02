//! The fastipc workspace's root package: it holds the top-level examples, the integration
//! tests and the test peers (`src/bin/`). It has no API of its own.
