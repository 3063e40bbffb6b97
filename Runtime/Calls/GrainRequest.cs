namespace OrleansMeta.Runtime.Calls;

/// <summary>
/// One link of a call chain: the grain that made a call and the request it was running. Chains let a callee see that
/// it is being waited on by its own caller (a cycle) and fail at once instead of deadlocking.
/// </summary>
public sealed record CallChainLink(GrainId Grain, long RequestId, CallChainLink? Caller);

/// <summary>The call chain of the code that is running now (flows with the execution context).</summary>
public static class RequestContext
{
    private static readonly AsyncLocal<CallChainLink?> s_current = new();

    /// <summary>The request being served by the current grain turn, or <c>null</c> outside grains.</summary>
    public static CallChainLink? Current
    {
        get => s_current.Value;
        internal set => s_current.Value = value;
    }
}

/// <summary>A grain call in flight: target, method, arguments, the caller's chain, and where the result goes.</summary>
public sealed class GrainRequest
{
    private static long s_nextId = Random.Shared.NextInt64(1, long.MaxValue / 2);

    private readonly TaskCompletionSource<object?> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public GrainRequest(GrainId target, GrainInterface grainInterface, GrainMethod method, object?[] arguments, CallChainLink? caller, CancellationToken cancellationToken)
    {
        Target = target;
        Interface = grainInterface;
        Method = method;
        Arguments = arguments;
        Caller = caller;
        CancellationToken = cancellationToken;
        Id = Interlocked.Increment(ref s_nextId);
    }

    /// <summary>Unique within this process; combined with the target grain it identifies a running turn.</summary>
    public long Id { get; }

    public GrainId Target { get; }

    public GrainInterface Interface { get; }

    public GrainMethod Method { get; }

    public object?[] Arguments { get; }

    public CallChainLink? Caller { get; }

    /// <summary>Cancelled when the caller gives up (its own token or the call timeout).</summary>
    public CancellationToken CancellationToken { get; }


    public Task<object?> Completion => _completion.Task;

    public bool IsCompleted => _completion.Task.IsCompleted;

    public void SetResult(object? result) => _completion.TrySetResult(result);

    public void SetException(Exception exception) => _completion.TrySetException(exception);

    public void SetCanceled() => _completion.TrySetCanceled(CancellationToken);

    public override string ToString() => $"{Target}.{Method.Name} #{Id}";
}
