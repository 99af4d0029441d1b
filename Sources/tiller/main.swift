import TillerCPU

// OpenBLAS chooses its kernels at load time: fix a wrong choice before anything else runs.
OpenBLASRuntime.reexecIfNeeded()
TillerCommand.main()
