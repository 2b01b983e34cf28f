// What the build recorded about itself, for `camvid --version` and `camvid doctor`.
#pragma once

/// The git commit camvid was built from (set by scripts/install through Package.swift), or "" when the build did not
/// record one (a plain `swift build`).
const char *camvid_build_commit(void);
