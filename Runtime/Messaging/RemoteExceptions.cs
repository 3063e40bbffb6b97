using System.Data.Common;
using System.Text.Json;
using OrleansMeta.Runtime.Activation;

namespace OrleansMeta.Runtime.Messaging;

/// <summary>An exception raised on another silo whose kind this silo does not know; it keeps the remote type name.</summary>
public sealed class RemoteGrainException(string remoteType, string message, bool isRetryable) : GrainRuntimeException(message)
{
    public string RemoteType { get; } = remoteType;

    public override bool IsRetryable { get; } = isRetryable;
}

/// <summary>The receiving silo does not own the grain in its view; the sender refreshes its view and retries.</summary>
public sealed class NotOwnerException(string message) : GrainRuntimeException(message)
{
    public override bool IsRetryable => true;
}

/// <summary>Teaches the <see cref="RemoteExceptionCodec"/> a product's exception types (register as a DI singleton).</summary>
public interface IRemoteExceptionRegistration
{
    void Register(RemoteExceptionCodec codec);
}

/// <summary>
/// Turns exceptions into <see cref="RemoteError"/>s and back, so that a caller on another silo catches the same
/// exception type it would catch locally. The runtime's own exceptions are known; products register theirs.
/// </summary>
public sealed class RemoteExceptionCodec
{
    private readonly Dictionary<Type, (string Name, Func<Exception, JsonElement?> Data)> _encoders = [];
    private readonly Dictionary<string, Func<string, JsonElement?, Exception>> _decoders = new(StringComparer.Ordinal);

    public RemoteExceptionCodec(IEnumerable<IRemoteExceptionRegistration>? registrations = null)
    {
        Register<InconsistentStateException>("state-conflict",
            e => JsonSerializer.SerializeToElement(new long?[] { e.ExpectedVersion, e.StoredVersion }),
            (message, data) =>
            {
                var versions = data?.Deserialize<long?[]>() ?? [0, null];
                return new InconsistentStateException(message, versions[0] ?? 0, versions[1]);
            });
        Register<GrainCallCycleException>("call-cycle",
            e => JsonSerializer.SerializeToElement(e.Cycle.Select(g => g.ToString()).ToArray()),
            (message, data) => new GrainCallCycleException(message, (data?.Deserialize<string[]>() ?? []).Select(GrainId.Parse).ToArray()));
        Register<GrainCallTimeoutException>("call-timeout", null, (message, _) => new GrainCallTimeoutException(message));
        Register<GrainActivationException>("activation-failed", null, (message, _) => new GrainActivationException(message, null));
        Register<SiloUnavailableException>("silo-unavailable", null, (message, _) => new SiloUnavailableException(message));
        Register<NotOwnerException>("not-owner", null, (message, _) => new NotOwnerException(message));
        Register<OperationCanceledException>("cancelled", null, (message, _) => new OperationCanceledException(message));
        Register<ArgumentException>("argument", null, (message, _) => new ArgumentException(message));
        Register<InvalidOperationException>("invalid-operation", null, (message, _) => new InvalidOperationException(message));
        Register<Persistence.FencedWriteException>("fenced-write",
            e => JsonSerializer.SerializeToElement(new object?[] { e.Fence.GrainId.ToString(), e.Fence.StateName, e.Fence.Version, e.FoundVersion }),
            (message, data) =>
            {
                var parts = data?.EnumerateArray().ToArray();
                return parts is { Length: 4 }
                    ? new Persistence.FencedWriteException(message,
                        new Persistence.WriteFence(GrainId.Parse(parts[0].GetString()!), parts[1].GetString()!, parts[2].GetInt64()),
                        parts[3].ValueKind == JsonValueKind.Number ? parts[3].GetInt64() : null)
                    : new RemoteGrainException("fenced-write", message, false);
            });
        // Storage failures keep their meaning across silos (locally the API answers each with a retryable 503): the
        // runtime's own kinds by name, and a database error or timeout that escaped a grain (a read outside state,
        // such as the log head) as "the owner's storage was unavailable". Unknown to the caller, it would be a 500.
        Register<WriteOutcomeUnknownException>("write-outcome-unknown", null,
            (message, _) => new WriteOutcomeUnknownException(message, new StorageUnavailableException(message)));
        Register<SiloFencedException>("silo-fenced", null, (message, _) => new SiloFencedException(message));
        Register<StorageUnavailableException>("storage-unavailable", null, (message, _) => new StorageUnavailableException(message));
        Register<DbException>("database-error", null, (message, _) => OwnerStorageFailed(message));
        Register<TimeoutException>("timeout", null, (message, _) => OwnerStorageFailed(message));
        foreach (var registration in registrations ?? [])
        {
            registration.Register(this);
        }
    }

    /// <summary>Teaches the codec an exception type: its wire name, optional details, and how to rebuild it.</summary>
    public void Register<TException>(string name, Func<TException, JsonElement?>? data, Func<string, JsonElement?, Exception> create)
        where TException : Exception
    {
        _encoders[typeof(TException)] = (name, data is null ? _ => null : e => data((TException)e));
        _decoders[name] = create;
    }

    public RemoteError Encode(Exception exception)
    {
        for (var type = exception.GetType(); type is not null && type != typeof(object); type = type.BaseType)
        {
            if (_encoders.TryGetValue(type, out var encoder))
            {
                return new RemoteError(encoder.Name, exception.Message, IsRetryable(exception), encoder.Data(exception));
            }
        }

        return new RemoteError(exception.GetType().FullName ?? exception.GetType().Name, exception.Message, IsRetryable(exception), null);
    }

    public Exception Decode(RemoteError error)
        => _decoders.TryGetValue(error.Type, out var create)
            ? create(error.Message, error.Data)
            : new RemoteGrainException(error.Type, error.Message, error.Retryable);

    private static StorageUnavailableException OwnerStorageFailed(string message) => new(
        $"The silo that owns the grain could not use its database ({message}); the call may or may not have taken effect. " +
        "Retry: a change that did happen is then seen as done or refused as stale.");

    // A silo that does not know a name still decodes the flag (a rolling upgrade): storage trouble is retryable there too.
    private static bool IsRetryable(Exception exception) => exception is GrainRuntimeException { IsRetryable: true } or DbException or TimeoutException;
}
