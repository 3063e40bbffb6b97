using System.Collections.Concurrent;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// The consumer groups active on this silo, each with what its grain last published: its state line and its offsets.
/// Listing every group asks each silo for its own, and each silo answers from these entries (summing lag over the
/// offsets without calling the grains), so a listing costs one call per silo and no database query. Groups with
/// committed offsets stay active (see <see cref="GroupLoader"/>), so every silo's part is complete.
/// </summary>
public sealed class GroupDirectory(LogOffsetsTable logOffsets)
{
    private readonly ConcurrentDictionary<string, GroupEntry> _groups = new(StringComparer.Ordinal);

    /// <summary>How many groups are active on this silo.</summary>
    public int Count => _groups.Count;

    /// <summary>Whether <paramref name="groupId"/> is active on this silo.</summary>
    public bool Contains(string groupId) => _groups.ContainsKey(groupId);

    /// <summary>
    /// The groups active on this silo, from what each grain published: lag is summed over its offsets here, with no
    /// grain call and no database. A group that has not published yet, or whose offsets are being read again after a
    /// failed store call, is asked.
    /// </summary>
    public async Task<IReadOnlyList<GroupListing>> ListAsync(IGrainFactory grains)
    {
        var lines = new List<GroupListing>(_groups.Count);
        List<Task<GroupListing?>>? asked = null;
        foreach (var entry in _groups.Values)
        {
            if (entry.Header is not { } header || entry.Offsets is not { } offsets)
            {
                (asked ??= []).Add(grains.GetGrain<IConsumerGroupGrain>(entry.GroupId).ListingAsync());
                continue;
            }

            var (lag, unknown, count) = offsets.SumLag(logOffsets);
            if (header.Exists || count > 0)
            {
                lines.Add(new GroupListing(entry.GroupId, header.State, header.GroupEpoch, header.Members, header.Assignor, count, lag, unknown));
            }
        }

        if (asked is not null)
        {
            lines.AddRange((await Task.WhenAll(asked).ConfigureAwait(false)).OfType<GroupListing>());
        }

        return lines;
    }

    internal GroupEntry Add(string groupId)
    {
        var entry = new GroupEntry(groupId);
        _groups[groupId] = entry;
        return entry;
    }

    /// <summary>Removes the entry only if it is still this activation's (a later activation may have replaced it).</summary>
    internal void Remove(GroupEntry entry) => _groups.TryRemove(new KeyValuePair<string, GroupEntry>(entry.GroupId, entry));
}

/// <summary>What one group's grain publishes for listings: replaced whole, read on any thread.</summary>
internal sealed class GroupEntry(string groupId)
{
    public string GroupId { get; } = groupId;

    /// <summary>The group's state line, or null before the grain published one.</summary>
    public volatile GroupHeader? Header;

    /// <summary>The grain's offsets, or null while they are to be read again (after a store call that failed).</summary>
    public volatile GroupOffsets? Offsets;
}

/// <summary>A group's state as its grain last published it.</summary>
/// <param name="Exists">Whether the group has a stored record (members joined at some time); a group without one
/// exists only while it has offsets.</param>
internal sealed record GroupHeader(string State, int GroupEpoch, int Members, string Assignor, bool Exists);
