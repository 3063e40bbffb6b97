using System.Collections;
using System.Runtime.CompilerServices;

namespace OrleansMeta.Grains.Metadata;

/// <summary>Creates <see cref="ChunkedArray{T}"/>s; also what collection expressions (<c>[.. items]</c>) call.</summary>
public static class ChunkedArray
{
    public static ChunkedArray<T> Create<T>(ReadOnlySpan<T> items)
    {
        var builder = ChunkedArray<T>.Empty.ToBuilder();
        foreach (var item in items)
        {
            builder.Add(item);
        }

        return builder.ToImmutable();
    }

    /// <summary><paramref name="count"/> copies of <paramref name="value"/>.</summary>
    public static ChunkedArray<T> Repeat<T>(T value, int count)
    {
        var builder = ChunkedArray<T>.Empty.ToBuilder();
        for (var i = 0; i < count; i++)
        {
            builder.Add(value);
        }

        return builder.ToImmutable();
    }
}

/// <summary>
/// An immutable array held in chunks of <see cref="ChunkSize"/> items. A new version shares every chunk it did not
/// change, so editing k items of an n-item array copies at most k chunks and one array of n / <see cref="ChunkSize"/>
/// chunk references, not all n items. The image keeps a topic's partition states this way: it applies the log in
/// batches of hundreds of records, and copying a whole 1M-partition topic per batch was 8 MB on the large-object heap
/// each time (800 KB at 100k), garbage that only a full collection reclaims.
/// </summary>
[CollectionBuilder(typeof(ChunkedArray), nameof(ChunkedArray.Create))]
public sealed class ChunkedArray<T> : IReadOnlyList<T>, IList<T>
{
    /// <summary>Items per chunk: 1024 references or 8-byte values are 8 KB, well below the large-object threshold.</summary>
    public const int ChunkSize = 1 << ChunkBits;

    private const int ChunkBits = 10;
    private const int ChunkMask = ChunkSize - 1;

    private readonly T[][] _chunks;

    private ChunkedArray(T[][] chunks, int length)
    {
        _chunks = chunks;
        Length = length;
    }

    public static ChunkedArray<T> Empty { get; } = new([], 0);

    public int Length { get; }

    int IReadOnlyCollection<T>.Count => Length;

    // IList<T>, read-only as ImmutableArray<T> implements it: LINQ's fast paths (Count(), ElementAt, Last, ToArray)
    // look for ICollection<T> and IList<T>, not for their read-only counterparts.
    int ICollection<T>.Count => Length;

    bool ICollection<T>.IsReadOnly => true;

    T IList<T>.this[int index]
    {
        get => this[index];
        set => throw new NotSupportedException("A ChunkedArray is immutable; edit it through ToBuilder().");
    }

    public T this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Length)
            {
                throw new ArgumentOutOfRangeException(nameof(index), index, $"The array holds {Length} items.");
            }

            return _chunks[index >> ChunkBits][index & ChunkMask];
        }
    }

    public Builder ToBuilder() => new(this);

    public int IndexOf(T item)
    {
        var comparer = EqualityComparer<T>.Default;
        for (var i = 0; i < Length; i++)
        {
            if (comparer.Equals(this[i], item))
            {
                return i;
            }
        }

        return -1;
    }

    public bool Contains(T item) => IndexOf(item) >= 0;

    public void CopyTo(T[] array, int arrayIndex)
    {
        for (var copied = 0; copied < Length; copied += ChunkSize)
        {
            _chunks[copied >> ChunkBits].AsSpan(0, Math.Min(ChunkSize, Length - copied)).CopyTo(array.AsSpan(arrayIndex + copied));
        }
    }

    void IList<T>.Insert(int index, T item) => throw new NotSupportedException("A ChunkedArray is immutable; edit it through ToBuilder().");

    void IList<T>.RemoveAt(int index) => throw new NotSupportedException("A ChunkedArray is immutable; edit it through ToBuilder().");

    void ICollection<T>.Add(T item) => throw new NotSupportedException("A ChunkedArray is immutable; edit it through ToBuilder().");

    void ICollection<T>.Clear() => throw new NotSupportedException("A ChunkedArray is immutable; edit it through ToBuilder().");

    bool ICollection<T>.Remove(T item) => throw new NotSupportedException("A ChunkedArray is immutable; edit it through ToBuilder().");

    public Enumerator GetEnumerator() => new(this);

    IEnumerator<T> IEnumerable<T>.GetEnumerator() => new BoxedEnumerator(this);

    IEnumerator IEnumerable.GetEnumerator() => new BoxedEnumerator(this);

    /// <summary>Edits a copy: chunks are copied the first time an item in them changes, and shared otherwise.</summary>
    public sealed class Builder
    {
        private T[][] _chunks;
        private bool[] _owned;

        internal Builder(ChunkedArray<T> from)
        {
            _chunks = from._chunks.Length == 0 ? [] : (T[][])from._chunks.Clone();
            _owned = new bool[_chunks.Length];
            Length = from.Length;
        }

        public int Length { get; private set; }

        public T this[int index]
        {
            get => (uint)index < (uint)Length
                ? _chunks[index >> ChunkBits][index & ChunkMask]
                : throw new ArgumentOutOfRangeException(nameof(index), index, $"The array holds {Length} items.");
            set
            {
                if ((uint)index >= (uint)Length)
                {
                    throw new ArgumentOutOfRangeException(nameof(index), index, $"The array holds {Length} items.");
                }

                Own(index >> ChunkBits)[index & ChunkMask] = value;
            }
        }

        public void Add(T item)
        {
            var chunk = Length >> ChunkBits;
            var slot = Length & ChunkMask;
            if (chunk == _chunks.Length)
            {
                Array.Resize(ref _chunks, Math.Max(4, _chunks.Length * 2));
                Array.Resize(ref _owned, _chunks.Length);
            }

            // The first chunk grows by doubling up to the chunk size, so that a topic of three partitions holds four
            // slots, not 1024; an array that needs a second chunk is large, and later chunks start full size.
            if (_chunks[chunk] is not { } current || slot == current.Length)
            {
                var grown = new T[chunk > 0 ? ChunkSize : Math.Min(ChunkSize, Math.Max(4, slot * 2))];
                _chunks[chunk]?.AsSpan(0, slot).CopyTo(grown);
                _chunks[chunk] = grown;
                _owned[chunk] = true;
            }

            Own(chunk)[slot] = item;
            Length++;
        }

        /// <summary>The array as edited so far; the builder may go on editing without changing it.</summary>
        public ChunkedArray<T> ToImmutable()
        {
            var used = (Length + ChunkMask) >> ChunkBits;
            var chunks = _chunks.AsSpan(0, used).ToArray();
            Array.Clear(_owned);
            return new ChunkedArray<T>(chunks, Length);
        }

        private T[] Own(int chunk)
        {
            if (!_owned[chunk])
            {
                _chunks[chunk] = (T[])_chunks[chunk].Clone();
                _owned[chunk] = true;
            }

            return _chunks[chunk];
        }
    }

    public struct Enumerator(ChunkedArray<T> array)
    {
        private int _index = -1;

        public readonly T Current => array[_index];

        public bool MoveNext() => ++_index < array.Length;
    }

    private sealed class BoxedEnumerator(ChunkedArray<T> array) : IEnumerator<T>
    {
        private int _index = -1;

        public T Current => array[_index];

        object? IEnumerator.Current => Current;

        public bool MoveNext() => ++_index < array.Length;

        public void Reset() => _index = -1;

        public void Dispose()
        {
        }
    }
}
