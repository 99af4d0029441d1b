import Foundation
import TillerCore
import TillerCPU

// OpenBLAS chooses its kernels at load time: fix a wrong choice before anything else runs.
OpenBLASRuntime.reexecIfNeeded()

// TillerCommand.main(), with a last line of defence: a Foundation or decoding error that reached
// the top unnamed is printed as one line (ErrorReason) instead of its multi-line dump. The errors
// each command names at the source (TillerError, ValidationError) and ArgumentParser's own pass
// through unchanged.
do {
    var command = try TillerCommand.parseAsRoot()
    try command.run()
} catch {
    TillerCommand.exit(withError: UnnamedError.translate(error))
}
