using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>Checks made before any grain is addressed, so bad input changes nothing and activates nothing.</summary>
internal static class Validation
{
    /// <summary>How long a read with <c>minOffset</c> waits for this silo's image.</summary>
    public static readonly TimeSpan ImageWait = TimeSpan.FromSeconds(10);

    public static void NonNegative(int value, string what)
    {
        if (value < 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"The {what} must be 0 or greater; got {value}.");
        }
    }

    /// <summary>
    /// The image at <paramref name="minOffset"/> or newer. An offset the log has not reached is refused at once
    /// (waiting cannot help: it was never written); one the log holds but this silo has not applied yet is waited for.
    /// </summary>
    public static async Task<MetadataImage> ImageAsync(MetadataImageService image, IMetadataLog log, long? minOffset, CancellationToken cancellationToken)
    {
        if (minOffset is not { } offset)
        {
            return image.Current;
        }

        await WithinHeadAsync(image, log, offset, "minOffset", cancellationToken);
        return await image.WaitForAsync(offset, ImageWait, cancellationToken);
    }

    /// <summary>Refuses a metadata offset below 0 or beyond the log head (read from the log only when this silo's
    /// image has not reached the offset, so the common case costs nothing).</summary>
    public static async Task WithinHeadAsync(MetadataImageService image, IMetadataLog log, long offset, string what, CancellationToken cancellationToken)
    {
        if (offset < 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{what} must be 0 or greater; got {offset}.");
        }

        if (offset > image.Current.Offset && await TryReadHeadAsync(log, cancellationToken) is { } head && offset > head)
        {
            throw MetaException.Invalid(ErrorCodes.OffsetOutOfRange,
                $"{what} {offset} is beyond the metadata log head {head}: no such offset has been written. Use an offset a write or read returned.");
        }
    }

    /// <summary>The log head, or null when storage cannot be read right now: the early refusal is then skipped and the
    /// caller waits for its image as it would anyway (a storage outage must not turn a read into a server error).</summary>
    private static async Task<long?> TryReadHeadAsync(IMetadataLog log, CancellationToken cancellationToken)
    {
        try
        {
            return await log.GetHeadAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return null;
        }
    }

    public static TopicImage Topic(MetadataImage image, string name)
    {
        TopicRules.ValidateName(name);
        return image.Topics.TryGetValue(name, out var topic)
            ? topic
            : throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"Topic '{name}' does not exist (at metadata offset {image.Offset}).");
    }
}
