using Npgsql;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>Drives a silo's membership row by hand, as peers would, for the tests of writes fenced by it.</summary>
internal static class MembershipRows
{
    public static async Task InsertAsync(TestDatabase database, string clusterId, SiloAddress silo, string status)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await ExecuteAsync(connection, null,
            $"INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at) VALUES ($1, $2, $3, 'test', '{status}', now(), now(), now())",
            clusterId, silo);
    }

    public static async Task SetStatusAsync(TestDatabase database, string clusterId, SiloAddress silo, string status)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await ExecuteAsync(connection, null, $"UPDATE membership SET status = '{status}' WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3", clusterId, silo);
    }

    /// <summary>Runs <paramref name="sql"/> with the cluster id, the silo's endpoint and its generation as $1, $2, $3.</summary>
    public static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, string clusterId, SiloAddress silo)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = silo.Endpoint });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = silo.Generation });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Completes once some backend waits on a lock (a write queued behind a membership row held by a test).</summary>
    public static async Task WaitUntilABackendWaitsOnALockAsync(TestDatabase database, string what)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await Eventually.Until(async () =>
        {
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", connection);
            return (long)(await command.ExecuteScalarAsync())! > 0;
        }, what, TimeSpan.FromSeconds(30));
    }
}

/// <summary>A writer fence that names a fixed silo (or none).</summary>
internal sealed class FixedWriter(SiloAddress? silo) : IWriterFence
{
    public SiloAddress? Writer => silo;
}
