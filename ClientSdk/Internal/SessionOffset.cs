namespace OrleansMeta.Client.Internal;

/// <summary>
/// The highest metadata log offset one client has seen in any answer, and the <c>minOffset</c> its metadata reads are
/// sent with when <see cref="MetaClientOptions.MonotonicReads"/> is on. Thread-safe and lock-free.
/// </summary>
internal sealed class SessionOffset(bool monotonicReads)
{
    private long _seen;

    /// <summary>The highest offset observed so far; 0 before the first answer.</summary>
    public long Seen => Volatile.Read(ref _seen);

    /// <summary>Raises <see cref="Seen"/> to <paramref name="offset"/> unless it is already as high.</summary>
    public void Observe(long offset)
    {
        var seen = Volatile.Read(ref _seen);
        while (offset > seen)
        {
            var found = Interlocked.CompareExchange(ref _seen, offset, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    /// <summary>
    /// The <c>minOffset</c> to send a metadata read with: the caller's <paramref name="requested"/>, raised to
    /// <see cref="Seen"/> when monotonic reads are on. <see cref="Seen"/> is left out where it asks for nothing more:
    /// nothing seen yet, or not above <paramref name="floor"/> (an offset the read waits for anyway, such as a delta's
    /// <c>sinceOffset</c>).
    /// </summary>
    public long? MinOffsetFor(long? requested, long floor = 0)
    {
        var seen = Seen;
        return monotonicReads && seen > floor && seen > (requested ?? 0) ? seen : requested;
    }

    /// <summary>Forgets <paramref name="offset"/> after the metadata log was found not to hold it (the log was
    /// rewritten under the client), unless a higher offset was seen meanwhile.</summary>
    public void Forget(long offset) => Interlocked.CompareExchange(ref _seen, 0, offset);
}
