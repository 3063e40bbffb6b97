using System.Text.Json;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime.Messaging;

namespace OrleansMeta.Grains;

/// <summary>Lets <see cref="MetaException"/> cross silos with its code, status and retryability.</summary>
internal sealed class MetaExceptionRegistration : IRemoteExceptionRegistration
{
    public void Register(RemoteExceptionCodec codec) => codec.Register<MetaException>(
        "meta",
        e => JsonSerializer.SerializeToElement(new MetaErrorData(e.Code, e.Status, e.Retryable)),
        (message, data) => data?.Deserialize<MetaErrorData>() is { } error
            ? new MetaException(error.Code, message, error.Status, error.Retryable)
            : new MetaException("UNKNOWN_SERVER_ERROR", message, 500));

    private sealed record MetaErrorData(string Code, int Status, bool Retryable);
}
