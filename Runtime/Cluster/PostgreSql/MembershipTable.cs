using System.Globalization;
using System.Text.Json;
using Npgsql;

namespace OrleansMeta.Runtime.Cluster.PostgreSql;

/// <summary>
/// The SQL of the membership protocol (schema in <c>002_membership.sql</c>). Every change compare-and-sets the
/// cluster's version first, so it is applied only on the view it was decided on; every timestamp is the database's.
/// </summary>
internal sealed class MembershipTable(NpgsqlDataSource dataSource, string clusterId)
{
    // Statuses only move forward; the rank lets SQL refuse a step back (above all, out of Dead).
    private const string Rank = "array_position(ARRAY['Joining','Active','ShuttingDown','Dead'], {0})";

    public string ClusterId { get; } = clusterId;

    /// <summary>Inserts a new incarnation of <paramref name="endpoint"/> as Joining, with a generation above every
    /// earlier one of that endpoint in this cluster and the URL clients reach it at (<paramref name="clientUrl"/>, may be
    /// null); returns it with the table version that includes it.</summary>
    public async Task<(SiloAddress Self, long Version)> InsertJoiningAsync(string endpoint, string name, string? clientUrl, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (var ensure = new NpgsqlCommand(
            "INSERT INTO membership_version (cluster_id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING", connection))
        {
            ensure.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
            await ensure.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        // Joining decides nothing from the view, so the version is bumped unconditionally; the row lock it takes also
        // serialises generation numbers of concurrent starts on one endpoint.
        long version;
        await using (var bump = new NpgsqlCommand(
            "UPDATE membership_version SET version = version + 1, changed_at = now() WHERE cluster_id = $1 RETURNING version", connection, transaction))
        {
            bump.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
            version = (long)(await bump.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        long generation;
        await using (var insert = new NpgsqlCommand(
            """
            INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at, client_url)
            SELECT $1, $2, coalesce(max(generation), 0) + 1, $3, 'Joining', now(), now(), now(), $4
            FROM membership WHERE cluster_id = $1 AND endpoint = $2
            RETURNING generation
            """,
            connection,
            transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = endpoint });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)clientUrl ?? DBNull.Value });
            generation = (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return (new SiloAddress(endpoint, generation), version);
    }

    /// <summary>Reads the whole view and the database's clock in one statement (one snapshot).</summary>
    public async Task<MembershipView> ReadAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            """
            SELECT v.version, now(), m.endpoint, m.generation, m.name, m.status, m.started_at, m.heartbeat_at, m.suspicions::text, m.client_url
            FROM membership_version v LEFT JOIN membership m ON m.cluster_id = v.cluster_id
            WHERE v.cluster_id = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        long version = 0;
        DateTimeOffset readAt = default;
        var silos = new List<SiloEntry>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            version = reader.GetInt64(0);
            readAt = reader.GetFieldValue<DateTimeOffset>(1);
            if (reader.IsDBNull(2))
            {
                continue;
            }

            silos.Add(new SiloEntry(
                new SiloAddress(reader.GetString(2), reader.GetInt64(3)),
                reader.GetString(4),
                Enum.Parse<SiloStatus>(reader.GetString(5)),
                reader.GetFieldValue<DateTimeOffset>(6),
                reader.GetFieldValue<DateTimeOffset>(7),
                ParseSuspicions(reader.GetString(8)))
            {
                ClientUrl = reader.IsDBNull(9) ? null : reader.GetString(9),
            });
        }

        if (version == 0 && silos.Count == 0)
        {
            return MembershipView.Empty;
        }

        silos.Sort((a, b) => a.Address.CompareTo(b.Address));
        return new MembershipView(version, silos) { ReadAt = readAt };
    }

    /// <summary>Stamps <paramref name="self"/>'s heartbeat; false when the row is Dead or gone (never revived).</summary>
    public async Task<bool> HeartbeatAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "UPDATE membership SET heartbeat_at = now() WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 AND status <> 'Dead'");
        AddKey(command.Parameters, self);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>Moves <paramref name="target"/> forward to <paramref name="status"/> if the table is still at
    /// <paramref name="expectedVersion"/>; returns the new version, or null when the compare-and-set was lost.</summary>
    public Task<long?> TrySetStatusAsync(long expectedVersion, SiloAddress target, SiloStatus status, CancellationToken cancellationToken) =>
        TryChangeAsync(expectedVersion, target, cancellationToken, parameters =>
        {
            parameters.Add(new NpgsqlParameter<string> { TypedValue = status.ToString() });
            return $"""
                UPDATE membership SET status = $4, status_changed_at = now()
                WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 AND {string.Format(CultureInfo.InvariantCulture, Rank, "status")} < {string.Format(CultureInfo.InvariantCulture, Rank, "$4")}
                """;
        });

    /// <summary>
    /// Adds (or renews) <paramref name="voter"/>'s vote against Active <paramref name="target"/>, stamped now(), drops
    /// expired votes and those of voters no longer Active (one declared dead may have been the silo cut off), and declares the target Dead in the same change when the fresh votes reach
    /// <paramref name="votesNeeded"/>. Returns the new version, or null when the compare-and-set was lost.
    /// </summary>
    public Task<long?> TryVoteAsync(
        long expectedVersion, SiloAddress target, SiloAddress voter, int votesNeeded, TimeSpan voteExpiration, CancellationToken cancellationToken) =>
        TryChangeAsync(expectedVersion, target, cancellationToken, parameters =>
        {
            parameters.Add(new NpgsqlParameter<string> { TypedValue = voter.Endpoint });
            parameters.Add(new NpgsqlParameter<long> { TypedValue = voter.Generation });
            parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = voteExpiration });
            parameters.Add(new NpgsqlParameter<int> { TypedValue = votesNeeded });
            return """
                WITH others AS (
                    SELECT coalesce(jsonb_agg(e), '[]'::jsonb) AS votes, count(e) AS fresh
                    FROM membership m, jsonb_array_elements(m.suspicions) e
                    WHERE m.cluster_id = $1 AND m.endpoint = $2 AND m.generation = $3
                      AND NOT (e->>'endpoint' = $4 AND (e->>'generation')::bigint = $5)
                      AND (e->>'at')::timestamptz > now() - $6
                      AND EXISTS (SELECT 1 FROM membership voter
                                  WHERE voter.cluster_id = $1 AND voter.endpoint = e->>'endpoint'
                                    AND voter.generation = (e->>'generation')::bigint AND voter.status = 'Active'))
                UPDATE membership m
                SET suspicions = others.votes || jsonb_build_array(jsonb_build_object('endpoint', $4, 'generation', $5, 'at', now())),
                    status = CASE WHEN others.fresh + 1 >= $7 THEN 'Dead' ELSE m.status END,
                    status_changed_at = CASE WHEN others.fresh + 1 >= $7 THEN now() ELSE m.status_changed_at END
                FROM others
                WHERE m.cluster_id = $1 AND m.endpoint = $2 AND m.generation = $3 AND m.status = 'Active'
                """;
        });

    /// <summary>
    /// Takes <paramref name="voter"/>'s vote against Active <paramref name="target"/> back (the voter reached it
    /// again). Returns the new version, or null when the compare-and-set was lost or there was no such vote.
    /// </summary>
    public Task<long?> TryWithdrawVoteAsync(long expectedVersion, SiloAddress target, SiloAddress voter, CancellationToken cancellationToken) =>
        TryChangeAsync(expectedVersion, target, cancellationToken, parameters =>
        {
            parameters.Add(new NpgsqlParameter<string> { TypedValue = voter.Endpoint });
            parameters.Add(new NpgsqlParameter<long> { TypedValue = voter.Generation });
            return """
                UPDATE membership m
                SET suspicions = coalesce(
                    (SELECT jsonb_agg(e) FROM jsonb_array_elements(m.suspicions) e
                     WHERE NOT (e->>'endpoint' = $4 AND (e->>'generation')::bigint = $5)),
                    '[]'::jsonb)
                WHERE m.cluster_id = $1 AND m.endpoint = $2 AND m.generation = $3 AND m.status = 'Active'
                  AND EXISTS (SELECT 1 FROM jsonb_array_elements(m.suspicions) e
                              WHERE e->>'endpoint' = $4 AND (e->>'generation')::bigint = $5)
                """;
        });

    private async Task<long?> TryChangeAsync(
        long expectedVersion, SiloAddress target, CancellationToken cancellationToken, Func<NpgsqlParameterCollection, string> change)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var cas = new NpgsqlCommand(
            "UPDATE membership_version SET version = version + 1, changed_at = now() WHERE cluster_id = $1 AND version = $2", connection, transaction))
        {
            cas.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
            cas.Parameters.Add(new NpgsqlParameter<long> { TypedValue = expectedVersion });
            if (await cas.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                return null;
            }
        }

        // Lock the target row FOR UPDATE before changing it: grain state writes hold their silo's row FOR KEY SHARE
        // while they commit (PostgresGrainStorage), so once this change commits (a silo declared Dead), no write of
        // that silo can commit after it. Heartbeats take a weaker lock and never wait for writes.
        // The wait is bounded: a write batch of a silo that is cut off mid-statement could hold its row for as long as
        // its connection lingers, and the version row locked above would hold up every other membership change with
        // it. A change that times out here is simply decided again on a later round.
        await using (var lockTimeout = new NpgsqlCommand("SET LOCAL lock_timeout = '2s'", connection, transaction))
        {
            await lockTimeout.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var lockRow = new NpgsqlCommand(
            "SELECT 1 FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 FOR UPDATE", connection, transaction))
        {
            AddKey(lockRow.Parameters, target);
            await lockRow.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var update = new NpgsqlCommand { Connection = connection, Transaction = transaction })
        {
            AddKey(update.Parameters, target);
            update.CommandText = change(update.Parameters);

            // The row no longer allows the change (another silo moved it first): roll the version back with it, a
            // change that changes nothing must not bump the version.
            if (await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                return null;
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return expectedVersion + 1;
    }

    private void AddKey(NpgsqlParameterCollection parameters, SiloAddress silo)
    {
        parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
        parameters.Add(new NpgsqlParameter<string> { TypedValue = silo.Endpoint });
        parameters.Add(new NpgsqlParameter<long> { TypedValue = silo.Generation });
    }

    private static SuspicionVote[] ParseSuspicions(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateArray()
            .Select(e => new SuspicionVote(
                new SiloAddress(e.GetProperty("endpoint").GetString()!, e.GetProperty("generation").GetInt64()),
                DateTimeOffset.Parse(e.GetProperty("at").GetString()!, CultureInfo.InvariantCulture)))
            .ToArray();
    }
}
