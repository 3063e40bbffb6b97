using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// Timings of the membership protocol. In a cluster of three silos or more the defaults declare a crashed silo dead in
/// every view within 10 seconds: about <see cref="ProbeInterval"/> × <see cref="MissedProbesLimit"/> (3 s) until its
/// peers vote, then one push. With two silos there is no peer to vote with, and a crashed silo is declared dead once
/// its heartbeat is older than <see cref="HeartbeatStaleAfter"/> (docs/membership.md).
/// </summary>
public sealed class MembershipOptions
{
    public const string SectionName = "Meta:Membership";

    /// <summary>How often each active silo probes every other active silo. Default: 1 second.</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a probe may take before it counts as missed. Default: 1 second.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Consecutive missed probes after which a silo votes its peer dead. Default: 3.</summary>
    public int MissedProbesLimit { get; set; } = 3;

    /// <summary>
    /// Fresh votes needed to declare a silo dead, capped at the number of other active silos. A silo votes only when,
    /// in the probe round that missed the suspect, it reached more than half of the other active silos; so in a
    /// two-silo cluster nobody votes, and a silent peer is declared dead only once its heartbeat is stale. Default: 2.
    /// </summary>
    public int VotesForDeath { get; set; } = 2;

    /// <summary>How long a vote counts, measured on the database's clock. Default: 20 seconds.</summary>
    public TimeSpan VoteExpiration { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How often a silo stamps its row with the database's clock. Default: 2 seconds.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A row whose heartbeat is older than this (database clock) belongs to a silo that stopped writing. Such a silo
    /// is declared dead without votes when it also fails probes (so a restarted cluster does not wait for peers that
    /// died with it), and stale Joining or ShuttingDown rows are cleaned up. Default: 10 seconds.
    /// </summary>
    public TimeSpan HeartbeatStaleAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a silo re-reads the table in case it missed a push. Default: 2 seconds.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long joining may wait for unreachable silos with fresh heartbeats before start-up fails.
    /// Default: 30 seconds.</summary>
    public TimeSpan JoinTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A silo that leaves gracefully keeps its silo endpoint open until no grain call from a peer has arrived for this
    /// long and none is in flight: a peer may have routed a call on its view from before the leave and still be
    /// sending it. Default: 250 milliseconds.
    /// </summary>
    public TimeSpan LeaveQuietPeriod { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest a leaving silo waits for peers' calls to stop (see <see cref="LeaveQuietPeriod"/>) before
    /// its server stops anyway. Default: 10 seconds.</summary>
    public TimeSpan LeaveDrainTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Reports every problem with <see cref="MembershipOptions"/> at start-up, with how to fix it.</summary>
public sealed class MembershipOptionsValidator : IValidateOptions<MembershipOptions>
{
    public ValidateOptionsResult Validate(string? name, MembershipOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string s = MembershipOptions.SectionName;
        var problems = new List<string>();
        void Positive(TimeSpan value, string property, string fallback)
        {
            if (value <= TimeSpan.Zero)
            {
                problems.Add($"{s}:{property} is {value}; it must be positive (default {fallback}).");
            }
        }

        Positive(options.ProbeInterval, nameof(options.ProbeInterval), "00:00:01");
        Positive(options.ProbeTimeout, nameof(options.ProbeTimeout), "00:00:01");
        Positive(options.VoteExpiration, nameof(options.VoteExpiration), "00:00:20");
        Positive(options.HeartbeatInterval, nameof(options.HeartbeatInterval), "00:00:02");
        Positive(options.HeartbeatStaleAfter, nameof(options.HeartbeatStaleAfter), "00:00:10");
        Positive(options.RefreshInterval, nameof(options.RefreshInterval), "00:00:02");
        Positive(options.JoinTimeout, nameof(options.JoinTimeout), "00:00:30");
        Positive(options.LeaveQuietPeriod, nameof(options.LeaveQuietPeriod), "00:00:00.250");
        Positive(options.LeaveDrainTimeout, nameof(options.LeaveDrainTimeout), "00:00:10");

        if (options.MissedProbesLimit < 1)
        {
            problems.Add($"{s}:MissedProbesLimit is {options.MissedProbesLimit}; it must be at least 1 (default 3).");
        }

        if (options.VotesForDeath < 1)
        {
            problems.Add($"{s}:VotesForDeath is {options.VotesForDeath}; it must be at least 1 (default 2).");
        }

        if (options.ProbeTimeout > options.ProbeInterval)
        {
            problems.Add($"{s}:ProbeTimeout ({options.ProbeTimeout}) exceeds ProbeInterval ({options.ProbeInterval}); " +
                         "lower ProbeTimeout or raise ProbeInterval, or probes of one silo overlap and misses are counted late.");
        }

        if (options.VoteExpiration < options.ProbeInterval * (options.MissedProbesLimit + 1))
        {
            problems.Add($"{s}:VoteExpiration ({options.VoteExpiration}) is shorter than ProbeInterval × (MissedProbesLimit + 1); " +
                         "raise it, or one voter's vote expires before the next voter has missed enough probes to add its own.");
        }

        if (options.HeartbeatStaleAfter < options.HeartbeatInterval * 2)
        {
            problems.Add($"{s}:HeartbeatStaleAfter ({options.HeartbeatStaleAfter}) is under twice HeartbeatInterval ({options.HeartbeatInterval}); " +
                         "raise it, or one slow heartbeat makes a live silo look stale.");
        }

        if (options.JoinTimeout <= options.HeartbeatStaleAfter)
        {
            problems.Add($"{s}:JoinTimeout ({options.JoinTimeout}) must exceed HeartbeatStaleAfter ({options.HeartbeatStaleAfter}); " +
                         "raise it, or a silo restarted right after a crash gives up before its dead peers' heartbeats go stale.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
