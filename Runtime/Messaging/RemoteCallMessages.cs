using System.Text.Json;

namespace OrleansMeta.Runtime.Messaging;

/// <summary>A grain call sent to the silo that owns the grain (POST /silo/v1/calls).</summary>
/// <param name="Grain">The target grain id in <c>type/key</c> form.</param>
/// <param name="Method">The method's stable wire name (<see cref="Calls.GrainMethod.Name"/>).</param>
/// <param name="Arguments">One JSON value per parameter; <c>null</c> for a cancellation token.</param>
/// <param name="Chain">The caller's call chain, innermost first, so that cycles are seen across silos.</param>
public sealed record RemoteCall(string Grain, string Method, JsonElement?[] Arguments, RemoteChainLink[] Chain);

/// <summary>One link of a call chain on the wire.</summary>
public sealed record RemoteChainLink(string Grain, long RequestId);

/// <summary>The outcome of a remote call: a value (absent for void methods) or an error.</summary>
public sealed record RemoteResult(JsonElement? Value, RemoteError? Error);

/// <summary>An exception carried back to the caller's silo.</summary>
/// <param name="Type">A stable name of the exception kind (see <see cref="RemoteExceptionCodec"/>).</param>
/// <param name="Message">The exception's message, for people.</param>
/// <param name="Retryable">Whether repeating the call may succeed.</param>
/// <param name="Data">Kind-specific details, such as the versions of a state conflict.</param>
public sealed record RemoteError(string Type, string Message, bool Retryable, JsonElement? Data);
