using Microsoft.Extensions.Options;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Watch;

/// <summary>
/// This silo's one tail of the metadata log for its watchers: a bounded ring of the most recent records, fed by the
/// image service as it applies them, so a watcher never reads the database while it keeps up. The ring and the image
/// move together, so a snapshot taken from the image is followed by the ring's next record without a gap.
/// </summary>
public sealed class WatchHub
{
    private readonly MetadataImageService _images;
    private readonly int _capacity;
    private readonly long _maxBytes;
    private readonly Lock _lock = new();
    private readonly WatchRecord?[] _ring;
    private int _head; // Index of the oldest record.
    private int _count;
    private long _bytes;
    private long _first = 1; // Offset of the oldest record held (or _last + 1 when none is).
    private MetadataImage? _image;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WatchHub(MetadataImageService images, IOptions<WatchOptions> options)
    {
        _images = images;
        _capacity = options.Value.RingCapacity;
        _maxBytes = options.Value.RingMaxBytes;
        _ring = new WatchRecord?[_capacity];
        images.Applied += OnApplied;
    }

    /// <summary>The image the ring ends at, with the offsets the ring holds ([First, Image.Offset]; First is
    /// Image.Offset + 1 when it holds none).</summary>
    public (MetadataImage Image, long First) State
    {
        get
        {
            lock (_lock)
            {
                var image = Image();
                return (image, _count == 0 ? image.Offset + 1 : _first);
            }
        }
    }

    /// <summary>How many records the ring holds, and their size in bytes.</summary>
    public (int Records, long Bytes) Size
    {
        get
        {
            lock (_lock)
            {
                return (_count, _bytes);
            }
        }
    }

    /// <summary>Copies up to <paramref name="max"/> records from <paramref name="from"/> on into <paramref name="into"/>.</summary>
    /// <returns>False when <paramref name="from"/> is older than the ring holds (read it from the log); true otherwise,
    /// with nothing copied when the ring has not reached it yet.</returns>
    public bool TryRead(long from, int max, List<WatchRecord> into)
    {
        lock (_lock)
        {
            var last = Image().Offset;
            if (from > last)
            {
                return true;
            }

            if (_count == 0 || from < _first)
            {
                return false;
            }

            var skip = (int)(from - _first);
            var take = Math.Min(max, _count - skip);
            for (var i = 0; i < take; i++)
            {
                into.Add(_ring[(_head + skip + i) % _capacity]!);
            }

            return true;
        }
    }

    /// <summary>Completes when the ring holds records after <paramref name="offset"/> (or when cancelled).</summary>
    public Task WaitBeyondAsync(long offset, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Image().Offset > offset ? Task.CompletedTask : _advanced.Task.WaitAsync(cancellationToken);
        }
    }

    private MetadataImage Image() => _image ?? _images.Current;

    private void OnApplied(IReadOnlyList<LoggedRecord> records, MetadataImage image)
    {
        TaskCompletionSource advanced;
        lock (_lock)
        {
            var last = Image().Offset;
            if (records.Count == 0 || records[0].Offset != last + 1)
            {
                // Not what follows the ring (the hub started after the image, or the image restarted): start afresh,
                // so the ring never spans a gap. Older offsets are read from the log.
                Array.Clear(_ring);
                (_head, _count, _bytes) = (0, 0, 0);
            }

            foreach (var record in records)
            {
                var entry = new WatchRecord(record);
                if (_count == 0)
                {
                    _first = record.Offset;
                }

                if (_count == _capacity)
                {
                    Evict();
                }

                _ring[(_head + _count) % _capacity] = entry;
                _count++;
                _bytes += entry.Size;
                while (_bytes > _maxBytes && _count > 1)
                {
                    Evict();
                }
            }

            _image = image;
            advanced = _advanced;
            _advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        advanced.TrySetResult();
    }

    private void Evict()
    {
        _bytes -= _ring[_head]!.Size;
        _ring[_head] = null;
        _head = (_head + 1) % _capacity;
        _count--;
        _first++;
    }
}
