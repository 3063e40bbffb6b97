using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// A broker keeping current: the size and time of <c>GET /v1/metadata/delta</c> after a handful of partition changes
/// (ISR changes through AlterPartition and leader moves), next to the full <c>GET /v1/metadata</c> answer, on one silo
/// holding topics of 1000 partitions.
/// </summary>
public static class MetadataDeltaScenario
{
    private const int PartitionsPerTopic = 1000;
    private const int Changes = 5;

    public static async Task<IReadOnlyList<string>> RunAsync(string connectionString, IReadOnlyList<int> partitionCounts)
    {
        var lines = new List<string>();
        foreach (var partitions in partitionCounts)
        {
            await using var silo = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(9));
            var grains = silo.App.Services.GetRequiredService<IGrainFactory>();
            var image = silo.App.Services.GetRequiredService<MetadataImageService>();
            using var alive = new CancellationTokenSource();
            var loops = await MetadataScenario.RegisterBrokersAsync(grains, image, 3, alive.Token);
            var topics = Math.Max(1, partitions / PartitionsPerTopic);
            long offset = 0;
            for (var t = 0; t < topics; t++)
            {
                offset = (await grains.GetGrain<ITopicGrain>($"deltas-{t}").CreateAsync(new CreateTopic($"deltas-{t}", Math.Min(partitions, PartitionsPerTopic), 3, null, null))).MetadataOffset;
            }

            await image.WaitForAsync(offset, TimeSpan.FromMinutes(2));
            using var http = new HttpClient { BaseAddress = silo.Address, Timeout = TimeSpan.FromMinutes(2) };
            var since = image.Current.Offset;
            var (fullFirst, full) = await TimeAsync(() => http.GetByteArrayAsync($"/v1/metadata?minOffset={since}"));
            var fullCached = await MedianAsync(() => http.GetByteArrayAsync($"/v1/metadata?minOffset={since}"), 5);
            var empty = await http.GetByteArrayAsync($"/v1/metadata/delta?sinceOffset={since}");

            // A handful of changes spread over different topics: ISR shrinks from the leader, and leaders moved away.
            var random = new Random(7);
            var moved = 0;
            for (var i = 0; i < Changes; i++)
            {
                var topic = image.Current.Topics[$"deltas-{random.Next(topics)}"];
                var state = topic.Partitions[random.Next(topic.Partitions.Length)];
                var leader = image.Current.Brokers[state.Leader].Record;
                var partition = grains.GetGrain<IPartitionGrain>(PartitionKeys.For(topic.Topic.TopicId, state.Partition));
                var shrunk = await partition.AlterPartitionAsync(new AlterPartition(state.Leader, leader.BrokerEpoch, state.LeaderEpoch, state.PartitionEpoch,
                    [.. state.Isr.Where(r => r != state.Leader).Take(1).Prepend(state.Leader)], image.Current.Offset));
                offset = Math.Max(offset, shrunk.MetadataOffset ?? 0);
                if (image.Current.Controller is { } controller)
                {
                    var move = await partition.ApplyAsync(new PartitionCommand(PartitionCommandKind.MoveLeadershipAway, controller.Epoch, [1, 2, 3], [], false,
                        state.Leader, image.Current.Offset));
                    if (move.MetadataOffset is { } at && move.ErrorCode is null)
                    {
                        offset = Math.Max(offset, at);
                        moved++;
                    }
                }
            }

            await image.WaitForAsync(offset, TimeSpan.FromSeconds(30));
            var path = $"/v1/metadata/delta?sinceOffset={since}&minOffset={offset}";
            var delta = await http.GetByteArrayAsync(path);
            var deltaTime = await MedianAsync(() => http.GetByteArrayAsync(path), 50);
            var (fullAfter, _) = await TimeAsync(() => http.GetByteArrayAsync($"/v1/metadata?minOffset={offset}"));
            lines.Add($"metadata deltas, {partitions:N0} partitions in {topics} topics: full answer {full.Length / 1024.0:N0} KiB " +
                $"(first build {fullFirst.TotalMilliseconds:0} ms, cached {fullCached.TotalMilliseconds:0.0} ms, rebuilt after the changes {fullAfter.TotalMilliseconds:0} ms); " +
                $"delta since the current offset {empty.Length} B; after {Changes} ISR changes and {moved} leader moves ({offset - since} records) " +
                $"the delta is {delta.Length:N0} B ({(double)full.Length / delta.Length:N0}x smaller), answered in {deltaTime.TotalMilliseconds:0.00} ms (median of 50)");
            await alive.CancelAsync();
            await Task.WhenAll(loops);
        }

        return lines;
    }

    private static async Task<(TimeSpan Elapsed, T Value)> TimeAsync<T>(Func<Task<T>> action)
    {
        var watch = Stopwatch.StartNew();
        var value = await action();
        return (watch.Elapsed, value);
    }

    private static async Task<TimeSpan> MedianAsync<T>(Func<Task<T>> action, int times)
    {
        var elapsed = new List<TimeSpan>();
        for (var i = 0; i < times; i++)
        {
            elapsed.Add((await TimeAsync(action)).Elapsed);
        }

        return elapsed.Order().ElementAt(times / 2);
    }
}
