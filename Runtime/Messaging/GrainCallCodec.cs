using System.Text.Json;
using OrleansMeta.Runtime.Calls;

namespace OrleansMeta.Runtime.Messaging;

/// <summary>JSON for grain calls crossing silos: arguments by their declared parameter types, results by the
/// method's result type, call chains as lists.</summary>
public sealed class GrainCallCodec(RemoteExceptionCodec exceptions)
{
    /// <summary>Web defaults (camelCase, case-insensitive reads); the same options on every silo.</summary>
    public JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web);

    public RemoteExceptionCodec Exceptions { get; } = exceptions;

    public RemoteCall Encode(GrainRequest request)
    {
        var parameterTypes = request.Method.ParameterTypes;
        var arguments = new JsonElement?[parameterTypes.Length];
        for (var i = 0; i < arguments.Length; i++)
        {
            arguments[i] = parameterTypes[i] == typeof(CancellationToken)
                ? null
                : JsonSerializer.SerializeToElement(request.Arguments[i], parameterTypes[i], Json);
        }

        var chain = new List<RemoteChainLink>();
        for (var link = request.Caller; link is not null; link = link.Caller)
        {
            chain.Add(new RemoteChainLink(link.Grain.ToString(), link.RequestId));
        }

        return new RemoteCall(request.Target.ToString(), request.Method.Name, arguments, [.. chain]);
    }

    /// <summary>Rebuilds the arguments; a cancellation token parameter receives <paramref name="cancellationToken"/>.</summary>
    public object?[] DecodeArguments(GrainMethod method, JsonElement?[] arguments, CancellationToken cancellationToken)
    {
        var parameterTypes = method.ParameterTypes;
        if (arguments.Length != parameterTypes.Length)
        {
            throw new ArgumentException($"{method.Name} takes {parameterTypes.Length} arguments; the call carried {arguments.Length}.");
        }

        var values = new object?[parameterTypes.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = parameterTypes[i] == typeof(CancellationToken)
                ? cancellationToken
                : arguments[i] is { } element ? element.Deserialize(parameterTypes[i], Json) : null;
        }

        return values;
    }

    public static CallChainLink? DecodeChain(RemoteChainLink[] chain)
    {
        CallChainLink? link = null;
        for (var i = chain.Length - 1; i >= 0; i--)
        {
            link = new CallChainLink(GrainId.Parse(chain[i].Grain), chain[i].RequestId, link);
        }

        return link;
    }

    public RemoteResult EncodeResult(GrainMethod method, object? value)
        => new(method.ResultType is null ? null : JsonSerializer.SerializeToElement(value, method.ResultType, Json), null);

    public RemoteResult EncodeError(Exception exception) => new(null, Exceptions.Encode(exception));

    /// <summary>The value of a successful result, or throws the carried exception.</summary>
    public object? DecodeResult(GrainMethod method, RemoteResult result)
    {
        if (result.Error is { } error)
        {
            throw Exceptions.Decode(error);
        }

        return method.ResultType is null || result.Value is not { } value ? null : value.Deserialize(method.ResultType, Json);
    }
}
