using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Benchmarks;

/// <summary>The cluster, groups and members as the rebalance scenario drives them.</summary>
public static partial class RebalanceScenario
{
    /// <summary>The silos, the SDK client that drives the members, and the run's counters.</summary>
    private sealed class BenchCluster(List<MetadataScenario.BenchSilo> silos, MetaClient client, string where, ApiWriteScenario.Run run)
    {
        private readonly Lock _lock = new();
        private readonly List<ClusterCallDispatcher> _dispatchers = [.. silos.Select(s => s.App.Services.GetRequiredService<ClusterCallDispatcher>())];
        private readonly string _groupType = silos[0].App.Services.GetRequiredService<GrainTypeRegistry>().GetInterface(typeof(IConsumerGroupGrain)).GrainType;

        public long HeartbeatCount;

        public List<MetadataScenario.BenchSilo> Silos { get; } = silos;

        public MetaClient Client { get; } = client;

        public string Where { get; } = where;

        public ApiWriteScenario.Run Run { get; } = run;

        public SemaphoreSlim Slots { get; } = new(InFlight);

        public List<PostgresStorageStatistics> Storage { get; } = [.. silos.Select(s => s.App.Services.GetRequiredService<PostgresGrainStorage>().Statistics)];

        public List<double> Transitions { get; } = [];

        public List<string> Errors { get; } = [];

        public long Heartbeats => Interlocked.Read(ref HeartbeatCount);

        public long Forwarded() => _dispatchers.Sum(d => d.ForwardedCalls(_groupType));

        public void Error(string error)
        {
            lock (_lock)
            {
                if (Errors.Count < 100)
                {
                    Errors.Add(error);
                }
            }
        }
    }

    /// <summary>A group as its members were told: who owns what at which epoch, every answer in its history.</summary>
    private sealed class BenchGroup(string id, string topic, Guid topicId, int partitions)
    {
        private readonly Lock _lock = new();
        private volatile bool _stable;

        public string Id { get; } = id;

        public string Topic { get; } = topic;

        public Guid TopicId { get; } = topicId;

        public List<BenchMember> Members { get; } = [];

        public AssignmentHistory History { get; } = new();

        public TimeSpan StableAfter { get; private set; }

        public bool IsStable => _stable;

        public void Unsettle() => _stable = false;

        public void Observe(BenchMember member, Action change)
        {
            lock (_lock)
            {
                change();
                if (member.Left)
                {
                    History.Leave(member.MemberId);
                }
                else
                {
                    History.Observe(member.MemberId, member.Epoch, member.Owned.Select(p => new TopicPartition(TopicId, p)));
                }
            }
        }

        /// <summary>Marks the group stable, at <paramref name="elapsed"/>, if every member is at one epoch and the members'
        /// partitions cover the topic without overlap.</summary>
        public bool TrySettle(TimeSpan elapsed)
        {
            lock (_lock)
            {
                if (_stable)
                {
                    return true;
                }

                var members = Members.Where(m => !m.Left).ToList();
                var epoch = members[0].Epoch;
                var owned = 0;
                var seen = new HashSet<int>();
                foreach (var member in members)
                {
                    if (member.Epoch != epoch || epoch <= 0)
                    {
                        return false;
                    }

                    owned += member.Owned.Count;
                    seen.UnionWith(member.Owned);
                }

                if (owned != partitions || seen.Count != partitions)
                {
                    return false;
                }

                StableAfter = elapsed;
                _stable = true;
                return true;
            }
        }
    }

    /// <summary>One member as the benchmark drives it: its epoch and partitions from the last answer.</summary>
    private sealed class BenchMember(BenchGroup group, string memberId)
    {
        private readonly Lock _lock = new();

        public BenchGroup Group { get; } = group;

        public string MemberId { get; } = memberId;

        public int Epoch { get; private set; }

        public HashSet<int> Owned { get; private set; } = [];

        public bool Left { get; private set; }

        /// <summary>The heartbeat a member sends while it is in the group, owned partitions listed, as the SDK's
        /// <see cref="GroupConsumer"/> sends it.</summary>
        public GroupHeartbeatRequest Heartbeat()
        {
            List<int> owned;
            lock (_lock)
            {
                owned = [.. Owned.Order()];
            }

            return new GroupHeartbeatRequest(MemberId, Epoch, ClientId: "orleans-meta-bench",
                OwnedPartitions: owned.Count == 0 ? [] : [new GroupTopicPartitions(Group.TopicId, Group.Topic, owned)]);
        }

        /// <summary>Takes the answer's epoch and partitions (revoking first, as a consumer does); whether it revoked any.</summary>
        public bool Apply(GroupHeartbeatResponse response)
        {
            var next = response.Assignment.Where(t => t.TopicId == Group.TopicId).SelectMany(t => t.Partitions).ToHashSet();
            var revoked = false;
            Group.Observe(this, () =>
            {
                lock (_lock)
                {
                    revoked = Owned.Any(p => !next.Contains(p));
                    Epoch = response.MemberEpoch;
                    Owned = next;
                }
            });
            return revoked;
        }

        public void Leave() => Group.Observe(this, () =>
        {
            lock (_lock)
            {
                Left = true;
                Owned = [];
            }
        });
    }
}
