using System.Globalization;
using OrleansMeta.Runtime;
using Xunit.Abstractions;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class MetadataLogConcurrencyTests(MigratedDatabaseFixture fixture, ITestOutputHelper output) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Fifty_writers_on_three_silos_get_offsets_1_to_N_and_a_tailer_reading_after_the_last_offset_sees_every_record_once()
    {
        const int Writers = 50;
        const int WritesEach = 20;
        var clusterId = NewClusterId();
        var silos = new OwnedStorage[3];
        for (var i = 0; i < silos.Length; i++)
        {
            silos[i] = new OwnedStorage(fixture.Database, clusterId, maxBatchSize: 16);
        }

        await using var tailerSilo = new OwnedStorage(fixture.Database, clusterId);
        await using var log = tailerSilo.CreateLog();
        try
        {
            // Records per write vary (1..3) so that batches hand out offset ranges of different sizes.
            static int RecordsOf(int writer, int write) => 1 + ((writer + write) % 3);
            var expectedTotal = Enumerable.Range(0, Writers).Sum(w => Enumerable.Range(0, WritesEach).Sum(i => RecordsOf(w, i)));

            using var writersDone = new CancellationTokenSource();
            var tailer = Task.Run(() => TailAsync(log, expectedTotal));
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                var storage = silos[w % silos.Length].Storage;
                var grain = new GrainId("partition", $"w{w}");
                var offsets = new List<(long Last, int Count)>();
                for (var i = 0; i < WritesEach; i++)
                {
                    var records = Enumerable.Range(0, RecordsOf(w, i))
                        .Select(r => new LogRecord("partition", $"w{w}", Json.Bytes($"{w}:{i}:{r}")))
                        .ToArray();
                    var result = await storage.WriteAsync(grain, State, new StateWrite(Json.Bytes($"{i}"), i, records, []), CancellationToken.None);
                    Assert.Equal(i + 1, result.Version);
                    offsets.Add((result.LastLogOffset!.Value, records.Length));
                }

                return offsets;
            })).ToArray();
            var results = await Task.WhenAll(writers);
            var seen = await tailer.WaitAsync(TimeSpan.FromMinutes(2));

            var all = await log.ReadAsync(0, expectedTotal + 10, CancellationToken.None);
            Assert.Equal(Enumerable.Range(1, expectedTotal).Select(o => (long)o), all.Select(r => r.Offset));
            Assert.Equal(expectedTotal, await log.GetHeadAsync(CancellationToken.None));
            var byOffset = all.ToDictionary(r => r.Offset);
            for (var w = 0; w < Writers; w++)
            {
                var previous = 0L;
                for (var i = 0; i < WritesEach; i++)
                {
                    var (last, count) = results[w][i];
                    Assert.True(last - count + 1 > previous, $"writer {w}: write {i} must follow write {i - 1} in the log");
                    for (var r = 0; r < count; r++)
                    {
                        Assert.Equal($"{w}:{i}:{r}", Json.Text(byOffset[last - count + 1 + r].Payload));
                    }

                    previous = last;
                }
            }

            Assert.Equal(all.Select(r => (r.Offset, Json.Text(r.Payload))), seen.Select(r => (r.Offset, Json.Text(r.Payload))));
            var transactions = silos.Sum(s => s.Storage.Statistics.Transactions);
            var writes = silos.Sum(s => s.Storage.Statistics.Writes);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{writes} writes, {expectedTotal} records in {transactions} transactions on {silos.Length} silos " +
                $"({(double)writes / transactions:F1} writes, {(double)expectedTotal / transactions:F1} records per transaction)"));
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task No_write_fenced_on_the_old_controller_epoch_commits_after_the_epoch_bump()
    {
        const int Rounds = 5;
        const int FencedWrites = 120;
        var clusterId = NewClusterId();
        await using var first = new OwnedStorage(fixture.Database, clusterId, maxBatchSize: 8);
        await using var second = new OwnedStorage(fixture.Database, clusterId, maxBatchSize: 8);
        await using var controllerSilo = new OwnedStorage(fixture.Database, clusterId, maxBatchSize: 8);
        await using var log = first.CreateLog();
        var silos = new[] { first, second, controllerSilo };
        var controller = new GrainId("controller", "0");
        await controllerSilo.Storage.WriteAsync(controller, State, Json.Bytes("1"), 0, CancellationToken.None);
        var committedTotal = 0;
        var fencedTotal = 0;

        for (var epoch = 1L; epoch <= Rounds; epoch++)
        {
            var fence = new WriteFence(controller, State, epoch);
            var round = epoch;
            Task<WriteResult> Fenced(int i) => silos[i % silos.Length].Storage.WriteAsync(
                new GrainId("partition", $"p{i}"), State,
                new StateWrite(Json.Bytes($"{round}"), round - 1, [new LogRecord("partition", $"p{i}", Json.Bytes($"{round}"))], [fence]),
                CancellationToken.None);

            // Half the fenced writes start before the bump and half after, all from three silos at once.
            var before = Enumerable.Range(0, FencedWrites / 2).Select(i => Task.Run(() => Fenced(i))).ToArray();
            var bump = controllerSilo.Storage.WriteAsync(controller, State,
                new StateWrite(Json.Bytes($"{epoch + 1}"), epoch, [new LogRecord("controller", "0", Json.Bytes($"{epoch + 1}"))], []),
                CancellationToken.None);
            var after = Enumerable.Range(FencedWrites / 2, FencedWrites / 2).Select(i => Task.Run(() => Fenced(i))).ToArray();
            var bumpOffset = (await bump).LastLogOffset!.Value;

            foreach (var write in before.Concat(after))
            {
                try
                {
                    var result = await write;
                    Assert.True(result.LastLogOffset < bumpOffset, $"epoch {epoch}: a write fenced on it got offset {result.LastLogOffset}, after the bump's {bumpOffset}");
                    committedTotal++;
                }
                catch (FencedWriteException fenced)
                {
                    Assert.Equal(epoch + 1, fenced.FoundVersion);
                    fencedTotal++;
                }
            }

            // Writes that lost were fenced, so their rows stayed behind; bring them level for the next round.
            for (var i = 0; i < FencedWrites; i++)
            {
                var row = await first.Storage.ReadAsync(new GrainId("partition", $"p{i}"), State, CancellationToken.None);
                if ((row?.Version ?? 0) == epoch - 1)
                {
                    await first.Storage.WriteAsync(new GrainId("partition", $"p{i}"), State, Json.Bytes("level"), epoch - 1, CancellationToken.None);
                }
            }
        }

        var records = await log.ReadAsync(0, 100_000, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, records.Count).Select(o => (long)o), records.Select(r => r.Offset));
        Assert.Equal(committedTotal + Rounds, records.Count);
        output.WriteLine($"{committedTotal} fenced writes committed before their epoch's bump, {fencedTotal} were fenced, over {Rounds} bumps");
    }

    /// <summary>Reads "after the last offset seen" until it has seen <paramref name="total"/> records. Every read must
    /// continue exactly where the previous one stopped: offsets taken from a sequence would commit out of order and
    /// leave a hole here that is filled only after the tailer has moved past it.</summary>
    private static async Task<List<LoggedRecord>> TailAsync(IMetadataLog log, int total)
    {
        var seen = new List<LoggedRecord>();
        var last = 0L;
        while (last < total)
        {
            var batch = await log.ReadAsync(last, 37, CancellationToken.None);
            foreach (var record in batch)
            {
                Assert.Equal(last + 1, record.Offset);
                seen.Add(record);
                last = record.Offset;
            }

            if (batch.Count == 0)
            {
                await log.WaitForAppendAsync(last, TimeSpan.FromSeconds(30), CancellationToken.None);
            }
        }

        return seen;
    }
}
