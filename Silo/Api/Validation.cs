using OrleansMeta.Client.Models;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

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

    public static async Task<MetadataImage> ImageAsync(MetadataImageService image, long? minOffset)
    {
        if (minOffset is < 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"minOffset must be 0 or greater; got {minOffset}.");
        }

        return minOffset is { } offset ? await image.WaitForAsync(offset, ImageWait) : image.Current;
    }

    public static TopicImage Topic(MetadataImage image, string name)
    {
        TopicRules.ValidateName(name);
        return image.Topics.TryGetValue(name, out var topic)
            ? topic
            : throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"Topic '{name}' does not exist (at metadata offset {image.Offset}).");
    }
}
