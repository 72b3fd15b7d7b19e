import Foundation
import PGSnapCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An HTTP answer with its whole body (bodies are bounded: parts and ranges of 8-64 MiB).
struct HTTPResponse {
    var status: Int
    var headers: [String: String]  // lower-cased names
    var body: Data
}

/// What went wrong below HTTP, in words for the one-line error.
struct HTTPFailure: Error {
    var text: String
    /// Worth another attempt (refused, reset, timed out, DNS).
    var transient: Bool
}

/// One synchronous HTTP exchange. `target` is the request target exactly as signed (path and query).
protocol HTTPTransport: Sendable {
    func send(method: String, url: URL, target: String, headers: [(String, String)], body: Data?) -> Result<HTTPResponse, HTTPFailure>
}

/// HTTPS (and anything not plain http) through Foundation's URLSession: the only place pgsnap
/// touches it.
///
/// Why URLSession (libcurl underneath on Linux) and not async-http-client: TLS to real S3
/// endpoints comes with the toolchain, and no package adds minutes to every CI build. Its
/// missing back-pressure on a streamed download does not arise: uploads send parts of 8-64 MiB
/// and downloads read ranges of the same size, so every body is bounded.
final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
    typealias Response = HTTPResponse
    typealias Failure = HTTPFailure

    private let session: URLSession

    init(timeout: TimeInterval) {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = max(timeout * 10, 600)
        config.httpMaximumConnectionsPerHost = 8
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        config.httpShouldSetCookies = false
        session = URLSession(configuration: config)
    }

    deinit { session.finishTasksAndInvalidate() }

    func send(method: String, url: URL, target: String, headers: [(String, String)], body: Data?) -> Result<Response, Failure> {
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        if let body, !body.isEmpty { request.httpBody = body }
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let task = session.dataTask(with: request) { data, response, error in
            if let error {
                result.value = .failure(URLSessionTransport.describe(error))
            } else if let http = response as? HTTPURLResponse {
                var h: [String: String] = [:]
                for (k, v) in http.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
                result.value = .success(Response(status: http.statusCode, headers: h, body: data ?? Data()))
            } else {
                result.value = .failure(Failure(text: "not an HTTP response", transient: false))
            }
            done.signal()
        }
        task.resume()
        done.wait()
        return result.value
    }

    /// Written by URLSession's queue before the semaphore is signalled, read after the wait.
    private final class ResultBox: @unchecked Sendable {
        var value: Result<Response, Failure> = .failure(Failure(text: "no response", transient: true))
    }

    static func describe(_ error: Error) -> Failure {
        guard let e = error as? URLError else { return Failure(text: oneLineError(error), transient: true) }
        switch e.code {
        case .cannotConnectToHost: return Failure(text: "connection refused", transient: true)
        case .networkConnectionLost: return Failure(text: "connection reset", transient: true)
        case .timedOut: return Failure(text: "timed out", transient: true)
        case .cannotFindHost, .dnsLookupFailed: return Failure(text: "host not found (DNS)", transient: true)
        case .notConnectedToInternet: return Failure(text: "no network", transient: true)
        case .badServerResponse: return Failure(text: "bad response from the server", transient: true)
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateHasUnknownRoot,
             .serverCertificateNotYetValid:
            return Failure(text: "TLS failed (\(e.code.rawValue))", transient: false)
        case .unsupportedURL, .badURL: return Failure(text: "bad URL", transient: false)
        default:
            // On Linux a certificate libcurl does not trust arrives as code -1 with curl's words.
            let words = oneLine(e.localizedDescription, limit: 160)
            if words.hasPrefix("SSL") { return Failure(text: "TLS failed (\(words))", transient: false) }
            return Failure(text: "network error \(e.code.rawValue)", transient: true)
        }
    }

    static func oneLineError(_ error: Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "error"
    }
}
