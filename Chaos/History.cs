using System.Collections.Concurrent;
using OrleansMeta.Contracts;

namespace OrleansMeta.Chaos;

/// <summary>How a client operation ended, as far as the client can know.</summary>
public enum Outcome
{
    /// <summary>Acknowledged: the service answered with success.</summary>
    Ok,

    /// <summary>Refused with a definite error code: the service says nothing was done.</summary>
    Refused,

    /// <summary>No definite answer (timeout, lost connection, 5xx, an unknown write outcome): it may or may not have happened.</summary>
    Unknown,
}

/// <summary>What a client asked for.</summary>
public enum OperationKind
{
    RegisterBroker,
    Heartbeat,
    ControlledShutdown,
    AlterPartition,
    Election,
    CreateTopic,
    DeleteTopic,
    AddPartitions,
    AlterConfigs,
    ReadMetadata,

    /// <summary>A consumer group heartbeat with member epoch 0 (join, or a static member returning).</summary>
    GroupJoin,

    /// <summary>A consumer group heartbeat that stays in the group (the member's current or previous epoch).</summary>
    GroupHeartbeat,

    /// <summary>A consumer group heartbeat with member epoch -1 (leave) or -2 (a static member leaving for a moment).</summary>
    GroupLeave,

    /// <summary>An offset commit (PUT /v1/groups/{id}/offsets), by a member or standalone (epoch -1, no member id).</summary>
    CommitOffsets,
}

/// <summary>One partition of a consumer group's subscription, by topic id (a topic created again is another topic).</summary>
public readonly record struct GroupPartition(Guid TopicId, string Topic, int Partition)
{
    public override string ToString() => $"{Topic}/{Partition}";
}

/// <summary>A group heartbeat as sent and, when answered, the answer: the member epoch and every partition the member
/// may own from then on.</summary>
public sealed record HeartbeatCall(string GroupId, string MemberId, int RequestEpoch, string? InstanceId)
{
    /// <summary>The partitions the request listed as owned (null when it did not say).</summary>
    public IReadOnlyList<GroupPartition>? Owned { get; init; }

    /// <summary>The answer's member epoch (null when not answered).</summary>
    public int? AnsweredEpoch { get; init; }

    /// <summary>The answer's assignment (null when not answered).</summary>
    public IReadOnlyList<GroupPartition>? Assigned { get; init; }
}

/// <summary>One partition's offset in a commit.</summary>
public readonly record struct CommittedOffset(string Topic, int Partition, long Offset);

/// <summary>An offset commit as sent: by a member with its epoch, or standalone (no member id, epoch -1).</summary>
public sealed record CommitCall(string GroupId, string? MemberId, int MemberEpoch, IReadOnlyList<CommittedOffset> Offsets);

/// <summary>
/// What an acknowledged write claims to have committed, in terms the checker can find in the metadata log: each effect
/// names one entity and the state the acknowledgement reported for it.
/// </summary>
public abstract record Effect
{
    /// <summary>The entity, for violation reports ("partition t/0", "topic t", "broker 3").</summary>
    public abstract string Entity { get; }
}

/// <summary>A partition reached this leader, leader epoch and (when known) partition epoch and ISR.</summary>
public sealed record PartitionEffect(string Topic, int Partition, int Leader, int LeaderEpoch, int? PartitionEpoch, IReadOnlyList<int>? Isr) : Effect
{
    /// <summary>The partition epoch an AlterPartition compared against: its change must directly follow that epoch.</summary>
    public int? ComparedPartitionEpoch { get; init; }

    public override string Entity => $"partition {Topic}/{Partition}";
}

/// <summary>A topic change: created, deleted, grown to a partition count, or configs set.</summary>
public sealed record TopicEffect(string Name, Guid TopicId, string Change, int? PartitionCount = null, IReadOnlyDictionary<string, string>? Configs = null) : Effect
{
    public const string Created = "created";
    public const string Deleted = "deleted";
    public const string PartitionsAdded = "partitions-added";
    public const string ConfigsAltered = "configs-altered";

    public override string Entity => $"topic {Name} ({TopicId:N})";
}

/// <summary>A broker incarnation registered with this epoch (the offset of its registration record).</summary>
public sealed record BrokerEffect(int BrokerId, Guid IncarnationId, long BrokerEpoch) : Effect
{
    public override string Entity => $"broker {BrokerId}";
}

/// <summary>One client operation with its invocation and completion times (ticks of one monotonic clock).</summary>
public sealed record Operation
{
    public required long Id { get; init; }

    public required string Client { get; init; }

    public required OperationKind Kind { get; init; }

    /// <summary>The inputs, readable (for reports).</summary>
    public required string Input { get; init; }

    public required long InvokedAt { get; init; }

    public long CompletedAt { get; init; }

    public Outcome Outcome { get; init; }

    /// <summary>The error code of a refusal, or what made the outcome unknown.</summary>
    public string? Error { get; init; }

    /// <summary>The metadata offset the answer carried (a write's commit offset, a read's image offset).</summary>
    public long? MetadataOffset { get; init; }

    /// <summary>What an acknowledged write reported as committed.</summary>
    public IReadOnlyList<Effect> Effects { get; init; } = [];

    /// <summary>A read issued with minOffset: the minimum it asked for.</summary>
    public long? MinOffset { get; init; }

    /// <summary>A read issued to see an earlier acknowledged write: that write's effects, which the answer must reflect
    /// (or something later).</summary>
    public IReadOnlyList<Effect> MustSee { get; init; } = [];

    /// <summary>A read's answer.</summary>
    public MetadataResponse? Answer { get; init; }

    /// <summary>A group heartbeat (join, stay, leave) with its answer.</summary>
    public HeartbeatCall? Heartbeat { get; init; }

    /// <summary>An offset commit.</summary>
    public CommitCall? Commit { get; init; }

    public override string ToString()
        => $"#{Id} {Client} {Kind}({Input}) -> {Outcome}{(Error is null ? "" : " " + Error)}{(MetadataOffset is { } o ? " @" + o : "")}";
}

/// <summary>A thread-safe record of every operation of a run, in invocation order of ids.</summary>
public sealed class History
{
    private readonly ConcurrentQueue<Operation> _operations = new();
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private long _nextId;

    public IReadOnlyList<Operation> Operations => [.. _operations.OrderBy(o => o.Id)];

    /// <summary>Adds an operation built by hand (the checker's tests).</summary>
    public void Add(Operation operation) => _operations.Enqueue(operation);

    /// <summary>How many operations have been recorded so far (cheap, unlike <see cref="Operations"/>).</summary>
    public int Count => _operations.Count;

    /// <summary>Runs <paramref name="call"/> and records it with its times and outcome; never throws what the call throws.</summary>
    /// <param name="describe">Turns the answer into the effects it acknowledges (and, for reads, the answer to keep).</param>
    /// <param name="request">Adds what was asked to the record whatever the outcome (a group call's details).</param>
    public async Task<T?> RecordAsync<T>(
        string client,
        OperationKind kind,
        string input,
        Func<Task<T>> call,
        Func<T, Operation, Operation>? describe = null,
        Func<Operation, Operation>? request = null)
        where T : class
        => (await RecordOutcomeAsync(client, kind, input, call, describe, request).ConfigureAwait(false)).Answer;

    /// <summary>As <see cref="RecordAsync"/>, and also returns the record (its outcome and error code).</summary>
    public async Task<(T? Answer, Operation Record)> RecordOutcomeAsync<T>(
        string client,
        OperationKind kind,
        string input,
        Func<Task<T>> call,
        Func<T, Operation, Operation>? describe = null,
        Func<Operation, Operation>? request = null)
        where T : class
    {
        var operation = new Operation
        {
            Id = Interlocked.Increment(ref _nextId),
            Client = client,
            Kind = kind,
            Input = input,
            InvokedAt = _clock.ElapsedTicks,
        };
        if (request is not null)
        {
            operation = request(operation) with { InvokedAt = _clock.ElapsedTicks };
        }

        try
        {
            var answer = await call().ConfigureAwait(false);
            var done = operation with { CompletedAt = _clock.ElapsedTicks, Outcome = Outcome.Ok };
            done = describe is null ? done : describe(answer, done);
            _operations.Enqueue(done);
            return (answer, done);
        }
        catch (Exception e)
        {
            var (outcome, error) = Classify(e);
            var failed = operation with { CompletedAt = _clock.ElapsedTicks, Outcome = outcome, Error = error };
            _operations.Enqueue(failed);
            return (null, failed);
        }
    }

    /// <summary>A definite refusal is a 4xx with an error code whose outcome is known; everything else may have happened.</summary>
    internal static (Outcome Outcome, string Error) Classify(Exception e) => e switch
    {
        OrleansMeta.Client.MetaApiException api when !api.OutcomeUnknown && api.StatusCode is >= 400 and < 500
            => (Outcome.Refused, api.Code),
        OrleansMeta.Client.MetaApiException api => (Outcome.Unknown, api.Code),
        _ => (Outcome.Unknown, e.GetType().Name),
    };
}
