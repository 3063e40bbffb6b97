using Microsoft.Extensions.Options;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Runtime.Messaging;

/// <summary>
/// Counts the grain calls peers have in flight on this silo and when the last one arrived, so that a silo leaving
/// gracefully keeps its silo endpoint open until peers have stopped sending. Stopping the web server while a peer's
/// call is arriving lets the server close the connection under a call it has accepted; the peer then cannot tell
/// whether the call ran, and its caller gets a failed call instead of a hand-over (docs/safety.md).
/// </summary>
/// <remarks>
/// By the time membership asks this drain, every reachable peer has read the view in which this silo is leaving, so
/// peers route new calls elsewhere; what can still arrive is a call routed on an older view, which this silo answers
/// (with "not the owner", and the peer retries elsewhere) while its endpoint is open.
/// </remarks>
internal sealed class InboundGrainCalls(IOptions<MembershipOptions> options, TimeProvider time) : ILeaveDrain
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);
    private readonly MembershipOptions _options = options.Value;
    private int _inFlight;
    private long _lastArrival;

    public string Description => $"no grain call from a peer is in flight or arrives for {_options.LeaveQuietPeriod.TotalMilliseconds:0} ms";

    /// <summary>Calls in flight now (for tests and diagnostics).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Marks a call as arrived; dispose the result once its answer is written.</summary>
    public Arrival Enter()
    {
        Interlocked.Increment(ref _inFlight);
        Volatile.Write(ref _lastArrival, time.GetTimestamp());
        return new Arrival(this);
    }

    public async Task<bool> WaitAsync(CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        while (Volatile.Read(ref _inFlight) > 0 || time.GetElapsedTime(Volatile.Read(ref _lastArrival)) < _options.LeaveQuietPeriod)
        {
            if (time.GetElapsedTime(started) >= _options.LeaveDrainTimeout)
            {
                return false;
            }

            await Task.Delay(PollInterval, time, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>One call in flight; disposing it ends the call.</summary>
    internal readonly struct Arrival(InboundGrainCalls owner) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref owner._inFlight);
    }
}
