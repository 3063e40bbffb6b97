namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// Counts of what a silo's activations asked of a grain's previous owner before loading the grain (a silo that joined
/// asks the active silo that owned the grain before it; a new owner asks a leaving one), and how long the activations
/// that had to ask waited. Read by tests and benchmarks; docs/safety.md.
/// </summary>
public sealed class HandOverStatistics
{
    private long _peerQuestions;
    private long _grainQuestions;
    private long _waits;
    private long _waitedTicks;
    private long _longestTicks;

    /// <summary>Questions "have you handed over everything I own?", one per peer at a time.</summary>
    public long PeerQuestions => Interlocked.Read(ref _peerQuestions);

    /// <summary>Questions "have you released this grain?", each for one grain.</summary>
    public long GrainQuestions => Interlocked.Read(ref _grainQuestions);

    /// <summary>Activations that waited on a silo that owned their grain until this one joined.</summary>
    public long Waits => Interlocked.Read(ref _waits);

    /// <summary>The time those activations waited, in all.</summary>
    public TimeSpan Waited => TimeSpan.FromTicks(Interlocked.Read(ref _waitedTicks));

    /// <summary>The longest of those waits.</summary>
    public TimeSpan LongestWait => TimeSpan.FromTicks(Interlocked.Read(ref _longestTicks));

    internal void RecordPeerQuestion() => Interlocked.Increment(ref _peerQuestions);

    internal void RecordGrainQuestion() => Interlocked.Increment(ref _grainQuestions);

    internal void RecordWait(TimeSpan waited)
    {
        Interlocked.Increment(ref _waits);
        Interlocked.Add(ref _waitedTicks, waited.Ticks);
        var longest = Interlocked.Read(ref _longestTicks);
        while (waited.Ticks > longest)
        {
            var seen = Interlocked.CompareExchange(ref _longestTicks, waited.Ticks, longest);
            if (seen == longest)
            {
                break;
            }

            longest = seen;
        }
    }

    public override string ToString()
        => $"{PeerQuestions} peer questions, {GrainQuestions} grain questions, {Waits} waits ({Waited.TotalMilliseconds:0} ms in all, longest {LongestWait.TotalMilliseconds:0} ms)";
}
