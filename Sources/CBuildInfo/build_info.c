#include "build_info.h"

// Package.swift defines it from $CAMVID_BUILD_COMMIT; a C define is the one way SwiftPM carries a value into a build.
#ifndef CAMVID_BUILD_COMMIT
#define CAMVID_BUILD_COMMIT ""
#endif

const char *camvid_build_commit(void) { return CAMVID_BUILD_COMMIT; }
