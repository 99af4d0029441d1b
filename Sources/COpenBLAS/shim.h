#pragma once
// Debian puts cblas.h behind an alternatives directory that pkg-config adds to the include path.
// OpenBLAS's cblas.h also declares openblas_get_corename / openblas_get_config, used by `tiller info`.
#include <cblas.h>
