namespace OrleansMeta.GrainInterfaces;

/// <summary>
/// A refusal the service explains to its caller: a Kafka-style error code, a sentence a person understands, the HTTP
/// status it maps to, and whether retrying may succeed. Crosses silos intact.
/// </summary>
public sealed class MetaException(string code, string message, int status = 400, bool retryable = false) : Exception(message)
{
    public string Code { get; } = code;

    public int Status { get; } = status;

    public bool Retryable { get; } = retryable;

    public static MetaException NotFound(string code, string message) => new(code, message, 404);

    public static MetaException Conflict(string code, string message) => new(code, message, 409);

    public static MetaException Invalid(string code, string message) => new(code, message, 400);

    /// <summary>What a failed call tells its caller as data: a refusal's code and whether it may be retried, or, for any
    /// other failure (a silo gone, a timeout), <c>SERVICE_UNAVAILABLE</c>, retryable, since the call's outcome is unknown.</summary>
    public static (string Code, bool Retryable) Outcome(Exception exception)
        => exception is MetaException refused ? (refused.Code, refused.Retryable) : (Contracts.ErrorCodes.Unavailable, true);
}
