using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The image's chunked arrays against a plain list doing the same edits.</summary>
public sealed class ChunkedArrayTests
{
    [Fact]
    public void Every_published_version_keeps_what_it_held_while_later_edits_go_on_across_chunk_boundaries()
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            var model = new List<long>();
            var builder = ChunkedArray<long>.Empty.ToBuilder();
            var published = new List<(ChunkedArray<long> Array, long[] Expected)>();
            for (var step = 0; step < 300; step++)
            {
                switch (random.Next(10))
                {
                    case < 3:
                        // Growth by a run of items, often past a chunk's end.
                        var count = random.Next(1, ChunkedArray<long>.ChunkSize / 2);
                        for (var i = 0; i < count; i++)
                        {
                            var value = random.NextInt64();
                            model.Add(value);
                            builder.Add(value);
                        }

                        break;
                    case < 8 when model.Count > 0:
                        var index = random.Next(model.Count);
                        var changed = random.NextInt64();
                        model[index] = changed;
                        builder[index] = changed;
                        break;
                    case < 9:
                        published.Add((builder.ToImmutable(), [.. model]));
                        break;
                    default:
                        // A new builder from the latest version, as each applied batch starts one.
                        var latest = builder.ToImmutable();
                        published.Add((latest, [.. model]));
                        builder = latest.ToBuilder();
                        break;
                }
            }

            published.Add((builder.ToImmutable(), [.. model]));
            foreach (var (array, expected) in published)
            {
                Assert.Equal(expected.Length, array.Length);
                Assert.Equal(expected, array);
                var copied = new long[array.Length];
                array.CopyTo(copied, 0);
                Assert.Equal(expected, copied);
                for (var i = 0; i < expected.Length; i += 97)
                {
                    Assert.Equal(expected[i], array[i]);
                }
            }
        }
    }

    [Fact]
    public void An_edit_copies_only_the_chunk_it_changes()
    {
        var array = ChunkedArray.Repeat(1L, 10 * ChunkedArray<long>.ChunkSize);
        var builder = array.ToBuilder();
        var before = GC.GetAllocatedBytesForCurrentThread();
        builder[5] = 2;
        builder[6] = 3;
        var edited = builder.ToImmutable();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // One chunk of 1024 longs (8 KB) and the chunk table, not the 80 KB of the whole array.
        Assert.InRange(allocated, 8 * ChunkedArray<long>.ChunkSize, 8 * ChunkedArray<long>.ChunkSize + 1024);
        Assert.Equal(1L, array[5]);
        Assert.Equal(2L, edited[5]);
        Assert.Equal(3L, edited[6]);
    }

    [Fact]
    public void A_small_array_holds_a_few_slots_not_a_whole_chunk_and_indexes_outside_it_are_refused()
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        ChunkedArray<long> three = [1, 2, 3];
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal([1L, 2L, 3L], three);
        Assert.True(allocated < 1024, $"three items took {allocated} bytes");
        Assert.Throws<ArgumentOutOfRangeException>(() => three[3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => three[-1]);
        Assert.Throws<NotSupportedException>(() => ((IList<long>)three).Add(4));
    }
}
