using System.Text;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>A storage with its own data source, both disposed together (a silo's lifetime, in miniature).</summary>
public sealed class OwnedStorage : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;

    public OwnedStorage(
        TestDatabase database, string clusterId, int maxBatchSize = 512, int maxConcurrentBatches = 4, int maxConcurrentReadBatches = 4,
        IWriterFence? writer = null, int maxAppendingBatches = 2, int? maxConnections = null)
    {
        _dataSource = maxConnections is { } max
            ? NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database.ConnectionString) { MaxPoolSize = max }.ConnectionString)
            : database.CreateDataSource();
        ClusterId = clusterId;
        Storage = new PostgresGrainStorage(
            _dataSource,
            Options.Create(new PostgresStorageOptions
            {
                ClusterId = clusterId,
                MaxBatchSize = maxBatchSize,
                MaxConcurrentBatches = maxConcurrentBatches,
                MaxConcurrentReadBatches = maxConcurrentReadBatches,
                MaxAppendingBatches = maxAppendingBatches,
            }),
            writer: writer);
    }

    public PostgresGrainStorage Storage { get; }

    public string ClusterId { get; }

    public NpgsqlDataSource DataSource => _dataSource;

    /// <summary>A log reader on this storage's data source and cluster; the caller disposes it before this.</summary>
    public PostgresMetadataLog CreateLog() => new(_dataSource, Options.Create(new PostgresStorageOptions { ClusterId = ClusterId }));

    public async ValueTask DisposeAsync()
    {
        await Storage.DisposeAsync();
        await _dataSource.DisposeAsync();
    }
}

internal static class Json
{
    public static byte[] Bytes(string json) => Encoding.UTF8.GetBytes(json);

    public static string Text(byte[]? bytes) => bytes is null ? "<null>" : Encoding.UTF8.GetString(bytes);
}
