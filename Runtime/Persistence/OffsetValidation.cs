using System.Text;

namespace OrleansMeta.Runtime.Persistence;

/// <summary>
/// The checks every <see cref="IOffsetStore"/> makes before it accepts a call. A batched store sends many groups'
/// commits in one statement, which the database refuses as a whole if one value is unstorable (a negative offset, a
/// NUL character in text, a key too long for its index); checking first fails only the call that carries it.
/// </summary>
public static class OffsetValidation
{
    /// <summary>The longest group id accepted, in UTF-16 characters. It is part of the table's key, and a b-tree
    /// entry must fit in a third of a page (about 2.7 kB); 512 characters are at most 1.5 kB of UTF-8.</summary>
    public const int MaxGroupIdLength = 512;

    /// <summary>The longest topic name accepted, in UTF-16 characters (Kafka's limit is 249).</summary>
    public const int MaxTopicLength = 512;

    /// <summary>The longest commit metadata accepted, in UTF-16 characters (Kafka's offset.metadata.max.bytes is 4096).</summary>
    public const int MaxMetadataLength = 4096;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first problem of a commit call.</summary>
    public static void ValidateCommit(string groupId, IReadOnlyList<OffsetCommit> commits)
    {
        ValidateGroupId(groupId);
        ArgumentNullException.ThrowIfNull(commits);
        for (var i = 0; i < commits.Count; i++)
        {
            var commit = commits[i] ?? throw new ArgumentException($"Commit {i} of group '{groupId}' is null.", nameof(commits));
            if (commit.Partition < 0)
            {
                throw new ArgumentException($"Commit {i} of group '{groupId}' names partition {commit.Partition}; partitions are 0 or more.", nameof(commits));
            }

            if (commit.Offset < 0)
            {
                throw new ArgumentException($"Commit {i} of group '{groupId}' ({commit.Topic}-{commit.Partition}) has offset {commit.Offset}; offsets are 0 or more.", nameof(commits));
            }

            CheckText(commit.Topic, $"The topic name of commit {i} of group '{groupId}'", MaxTopicLength, nameof(commits));
            if (commit.Metadata is not null)
            {
                CheckText(commit.Metadata, $"The metadata of commit {i} of group '{groupId}' ({commit.Topic}-{commit.Partition})", MaxMetadataLength, nameof(commits));
            }
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="groupId"/> cannot be stored.</summary>
    public static void ValidateGroupId(string groupId)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        if (groupId.Length == 0)
        {
            throw new ArgumentException("The group id is empty.", nameof(groupId));
        }

        CheckText(groupId, "The group id", MaxGroupIdLength, nameof(groupId));
    }

    private static void CheckText(string? text, string what, int maxLength, string parameter)
    {
        if (text is null)
        {
            throw new ArgumentException($"{what} is null.", parameter);
        }

        if (text.Length > maxLength)
        {
            throw new ArgumentException($"{what} is {text.Length} characters long; at most {maxLength} are accepted.", parameter);
        }

        if (text.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"{what} contains a NUL character, which PostgreSQL text cannot hold.", parameter);
        }

        // A lone surrogate has no UTF-8 form: the driver would refuse the whole batch while encoding it.
        var rest = text.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                throw new ArgumentException($"{what} is not well-formed UTF-16 (a lone surrogate at character {text.Length - rest.Length}).", parameter);
            }

            rest = rest[consumed..];
        }
    }
}
