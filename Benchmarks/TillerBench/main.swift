import TillerCPU

// OpenBLAS chooses its kernels when the library loads: a wrong choice (SSE kernels on an
// AVX-512 machine) would make every sgemm figure, and every ratio against it, meaningless.
// Re-executing with OPENBLAS_CORETYPE set has to happen before anything is measured.
OpenBLASRuntime.reexecIfNeeded()
BenchCommand.main()
