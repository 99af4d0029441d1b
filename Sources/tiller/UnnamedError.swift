import Foundation
import TillerCore

/// Errors that reach main.swift without a TillerError around them: Foundation's (NSCocoaErrorDomain,
/// POSIX) and Codable's, whose descriptions are multi-line dumps naming no file. Every known source
/// names its file and key itself (ErrorReason); this only keeps a missed one to a single line.
enum UnnamedError {
    static func translate(_ error: Error) -> Error {
        if error is DecodingError {
            return TillerError.invalidArgument(op: "tiller", detail: ErrorReason.decoding(error))
        }
        if error is EncodingError || error is CocoaError || error is POSIXError {
            return TillerError.invalidArgument(op: "tiller", detail: ErrorReason.oneLine(error))
        }
        // Any other Swift error bridges to an NSError whose domain is its type's name; only
        // Foundation's own domains are translated, so ArgumentParser's errors keep their behaviour.
        let domain = (error as NSError).domain
        if [NSCocoaErrorDomain, NSPOSIXErrorDomain, NSURLErrorDomain].contains(domain) {
            return TillerError.invalidArgument(op: "tiller", detail: ErrorReason.oneLine(error))
        }
        return error
    }
}
