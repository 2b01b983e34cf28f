// oneDNN 2.6 C API.
#pragma once
#include <dnnl.h>
