using Microsoft.Extensions.Options;
using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.Runtime.Calls;

/// <summary>Delivers a request to the activation that will run it. The single place where a call is routed: today to
/// the local catalog; with a cluster, to the owning silo.</summary>
public interface IGrainCallDispatcher
{
    void Dispatch(GrainRequest request);
}

/// <summary>
/// The caller's side of every grain call: attaches the call chain, applies the call timeout and the caller's
/// cancellation, hands the request to the dispatcher and waits for the result.
/// </summary>
public sealed class GrainCallInvoker(IGrainCallDispatcher dispatcher, IOptions<GrainRuntimeOptions> options, TimeProvider timeProvider)
{
    private readonly TimeSpan _callTimeout = options.Value.CallTimeout;

    public async Task<object?> InvokeAsync(GrainId target, GrainInterface grainInterface, GrainMethod method, object?[] arguments)
    {
        var callerToken = method.CancellationTokenIndex >= 0 && arguments[method.CancellationTokenIndex] is CancellationToken token
            ? token
            : CancellationToken.None;
        callerToken.ThrowIfCancellationRequested();

        using var timeout = new CancellationTokenSource(_callTimeout, timeProvider);
        using var linked = callerToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(callerToken, timeout.Token)
            : null;
        var callToken = linked?.Token ?? timeout.Token;
        if (method.CancellationTokenIndex >= 0)
        {
            // The grain sees a token that fires on the caller's cancellation and on the call timeout alike.
            arguments[method.CancellationTokenIndex] = callToken;
        }

        var request = new GrainRequest(target, grainInterface, method, arguments, RequestContext.Current, callToken);

        // The token ends the wait by cancelling the request itself (a turn that finishes later finds it completed and
        // its result goes nowhere, as before); cheaper than a second task that waits on the first.
        using var registration = callToken.UnsafeRegister(static state => ((GrainRequest)state!).SetCanceled(), request);
        dispatcher.Dispatch(request);
        try
        {
            return await request.Completion.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !callerToken.IsCancellationRequested)
        {
            throw new GrainCallTimeoutException(
                $"Call {target}.{method.Name} did not complete within {_callTimeout.TotalSeconds:0.###} s. " +
                "The grain may still be busy or may still finish the work; retry idempotent calls.");
        }
    }
}
