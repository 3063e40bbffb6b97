namespace OrleansMeta.Contracts;

/// <summary>
/// An answer that names a metadata log offset: the offset a write was committed at, or the offset of the image a read
/// was answered from. A client that sends the highest one it has seen as <c>minOffset</c> with its reads never reads
/// older metadata than it has already seen or written (the SDK does this by default: <c>MonotonicReads</c>).
/// </summary>
public interface IMetadataOffsetAnswer
{
    /// <summary>The metadata log offset the answer reflects.</summary>
    long MetadataOffset { get; }
}
