using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>A call to the Orleans.Meta API failed: the service answered with an error, or no silo could be reached, or
/// the call timed out.</summary>
public sealed class MetaApiException : Exception
{
    /// <summary>Creates an exception, e.g. to stand in for the client in tests of code that calls it.</summary>
    /// <param name="code">An <see cref="ErrorCodes"/> value or another error name.</param>
    /// <param name="detail">What went wrong, in a sentence.</param>
    /// <param name="statusCode">The HTTP status of the answer, or null when there was none.</param>
    /// <param name="isRetryable">Whether the same request may succeed later.</param>
    /// <param name="siloUrl">The silo that answered or was tried last.</param>
    /// <param name="outcomeUnknown">Whether the request may have been applied although no answer came back.</param>
    /// <param name="innerException">The transport failure behind this one, if any.</param>
    public MetaApiException(
        string code,
        string? detail,
        int? statusCode = null,
        bool isRetryable = false,
        Uri? siloUrl = null,
        bool outcomeUnknown = false,
        Exception? innerException = null)
        : base(FormatMessage(code, detail, statusCode, siloUrl), innerException)
    {
        ArgumentException.ThrowIfNullOrEmpty(code);
        Code = code;
        Detail = detail;
        StatusCode = statusCode;
        IsRetryable = isRetryable;
        SiloUrl = siloUrl;
        OutcomeUnknown = outcomeUnknown;
    }

    /// <summary>The error name: the <c>code</c> member of the problem answer (see <see cref="ErrorCodes"/>), or one the
    /// client made up when there was no such answer: <see cref="ErrorCodes.Unavailable"/> when no silo could be
    /// reached, <see cref="ErrorCodes.Timeout"/> when an attempt timed out, <c>UNKNOWN_SERVER_ERROR</c> for an answer
    /// it could not read.</summary>
    public string Code { get; }

    /// <summary>The HTTP status of the answer, or null when no answer came back.</summary>
    public int? StatusCode { get; }

    /// <summary>The <c>detail</c> (or else <c>title</c>) of the problem answer, or a description of the failure.</summary>
    public string? Detail { get; }

    /// <summary>Whether the same request may succeed if sent again later. The client has already retried what it
    /// safely could; when this is true and <see cref="OutcomeUnknown"/> is also true, check the state before resending
    /// a write.</summary>
    public bool IsRetryable { get; }

    /// <summary>True when a write (POST or PATCH) reached a silo but no answer came back (the attempt timed out, the
    /// connection broke, or a gateway answered 502/504): it may or may not have been applied. The client never resends
    /// such a write by itself.</summary>
    public bool OutcomeUnknown { get; }

    /// <summary>The base URL of the silo that answered, or of the one tried last when none answered.</summary>
    public Uri? SiloUrl { get; }

    /// <summary>Whether the client may send the request again by itself: set by the client, never by callers.</summary>
    internal bool ShouldResend { get; init; }

    /// <summary>The <c>Retry-After</c> delay the silo asked for, if any.</summary>
    internal TimeSpan? RetryAfter { get; init; }

    private static string FormatMessage(string code, string? detail, int? statusCode, Uri? siloUrl)
    {
        var status = statusCode is { } s ? $"HTTP {s}" : "no answer";
        var from = siloUrl is null ? "" : $" from {siloUrl}";
        return string.IsNullOrEmpty(detail) ? $"{code} ({status}{from})" : $"{code}: {detail} ({status}{from})";
    }
}
