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
}

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

    /// <summary>Runs <paramref name="call"/> and records it with its times and outcome; never throws what the call throws.</summary>
    /// <param name="describe">Turns the answer into the effects it acknowledges (and, for reads, the answer to keep).</param>
    public async Task<T?> RecordAsync<T>(
        string client,
        OperationKind kind,
        string input,
        Func<Task<T>> call,
        Func<T, Operation, Operation>? describe = null)
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
        try
        {
            var answer = await call().ConfigureAwait(false);
            var done = operation with { CompletedAt = _clock.ElapsedTicks, Outcome = Outcome.Ok };
            _operations.Enqueue(describe is null ? done : describe(answer, done));
            return answer;
        }
        catch (Exception e)
        {
            var (outcome, error) = Classify(e);
            _operations.Enqueue(operation with { CompletedAt = _clock.ElapsedTicks, Outcome = outcome, Error = error });
            return null;
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
